#!/usr/bin/env bash
# Build the Python environment that executors unpack: a fresh virtualenv with our
# requirements and a regular (non-editable) install of this checkout, packed by venv-pack.
#
#   submit/pack_env.sh [--requirements FILE] [--venv DIR] [OUTPUT]
#
#   OUTPUT          default dist/longtail-env.tar.gz (what submit/submit.sh ships)
#   --requirements  default requirements.txt (pick the torch build that matches the nodes'
#                   CUDA, e.g. with an --extra-index-url line)
#   --venv          where the environment is built (default build/pack-venv; reused)
#
# Why not pack .venv: it holds an editable install that points back at this checkout,
# which executors do not have. Re-run after changing our code: the install is refreshed.
# venv-pack does not copy the interpreter: the nodes need the same Python (PYTHON, default
# python3) at the same path, e.g. the same base image; see docs/cluster.md.
# BUILD_PYTHON (default .venv/bin/python) builds the wheel of our code.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
requirements="$REPO/requirements.txt" venv="$REPO/build/pack-venv"
while [ $# -gt 0 ]; do
  case "$1" in
    --requirements) requirements="$2"; shift 2 ;;
    --venv) venv="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
out="${1:-$REPO/dist/longtail-env.tar.gz}"

[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install -q -r "$requirements"
# our code as a wheel, built by the development environment (it has setuptools and wheel)
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
# from a copy: setuptools builds in-tree, and would leave build/ and *.egg-info in the checkout
mkdir "$wheels/src"
cp -r "$REPO/setup.py" "$REPO/requirements.txt" "$REPO/curation" "$REPO/jobs" "$REPO/udfs" "$wheels/src/"
"${BUILD_PYTHON:-$REPO/.venv/bin/python}" -m pip wheel -q --no-deps --no-build-isolation -w "$wheels" "$wheels/src" \
  2>"$wheels/build.log" || { cat "$wheels/build.log" >&2; exit 1; }
"$venv/bin/pip" install -q --no-deps --force-reinstall "$wheels"/*.whl
packer="$venv/bin/venv-pack"
[ -x "$packer" ] || packer=$(command -v venv-pack) || { echo "error: venv-pack not found (pip install venv-pack)" >&2; exit 2; }
mkdir -p "$(dirname "$out")"
"$packer" --prefix "$venv" --output "$out" --force --quiet
echo "packed $venv -> $out ($(du -h "$out" | cut -f1))"
