#!/usr/bin/env bash
# spark-submit a longtail-curation job to Spark standalone, YARN or Kubernetes.
#
#   submit/submit.sh [--gpu] [--env ARCHIVE|none] [--print] [spark-submit options] \
#       MASTER jobs/<file>.py [job word] [job options]
#
#   MASTER        spark://host:7077 | yarn | k8s://https://host:6443 (picks submit/conf/<manager>.conf)
#   --gpu         add submit/conf/gpu.conf and ship submit/getGpusResources.sh (GPU jobs only)
#   --gpu-shared  add submit/conf/gpu-shared.conf instead (CPU + GPU stages in one application)
#   --env ARCHIVE the packed environment from submit/pack_env.sh (default dist/longtail-env.tar.gz),
#                 unpacked as ./environment on every executor (and on the driver in cluster mode);
#                 `--env none`: the nodes already have it at $LONGTAIL_PYTHON (a shared
#                 filesystem or a container image)
#   --print       print the spark-submit command instead of running it
#   other options (--conf k=v, --executor-memory 4g, --num-executors 8, ...) go to spark-submit
#   and win over the conf files.
#
# Environment: SPARK_SUBMIT (default: spark-submit on PATH, else the venv's),
# LONGTAIL_PYTHON (driver Python in client mode, and the executors' with --env none;
# default: this checkout's .venv/bin/python).
# See docs/cluster.md for one worked example per cluster manager.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }

gpu_conf="" env_archive="$REPO/dist/longtail-env.tar.gz" print=0 passthrough=() user_files=""
while [ $# -gt 0 ]; do
  case "$1" in
    --gpu) gpu_conf="$HERE/conf/gpu.conf"; shift ;;
    --gpu-shared) gpu_conf="$HERE/conf/gpu-shared.conf"; shift ;;
    --env) env_archive="${2:?--env needs an archive or none}"; shift 2 ;;
    --print) print=1; shift ;;
    -h|--help) usage ;;
    --verbose|--supervise) passthrough+=("$1"); shift ;;
    --files) user_files="${2:?--files needs a value}"; shift 2 ;;   # merged with ours below
    --files=*) user_files="${1#--files=}"; shift ;;
    --*=*) passthrough+=("$1"); shift ;;
    --*) passthrough+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || usage
master="$1" job_file="$2"; shift 2

case "$master" in
  spark://*) manager=standalone ;;
  yarn) manager=yarn ;;
  k8s://*) manager=k8s ;;
  *) echo "error: MASTER must be spark://host:port, yarn or k8s://https://host:port, got '$master'" >&2; exit 2 ;;
esac
[ -f "$REPO/$job_file" ] || [ -f "$job_file" ] || { echo "error: job file not found: $job_file" >&2; exit 2; }

# Later lines win in a properties file, so concatenation layers the presets.
props=$(mktemp "${TMPDIR:-/tmp}/longtail-submit.XXXXXX.conf")
trap 'rm -f "$props"' EXIT
cat "$HERE/conf/common.conf" "$HERE/conf/$manager.conf" ${gpu_conf:+"$gpu_conf"} > "$props"
deploy_mode=$(awk '$1 == "spark.submit.deployMode" {m = $2} END {print m}' "$props")
for ((i = 0; i < ${#passthrough[@]}; i++)); do   # --deploy-mode / --conf spark.submit.deployMode=... override
  case "${passthrough[$i]}" in
    --deploy-mode) deploy_mode="${passthrough[$((i + 1))]}" ;;
    --deploy-mode=*) deploy_mode="${passthrough[$i]#--deploy-mode=}" ;;
    spark.submit.deployMode=*) deploy_mode="${passthrough[$i]#spark.submit.deployMode=}" ;;
  esac
done

local_python="${LONGTAIL_PYTHON:-$REPO/.venv/bin/python}"
args=(--master "$master" --properties-file "$props")
if [ "$env_archive" = none ]; then
  executor_python="$local_python"
else
  [ -f "$env_archive" ] || case "$env_archive" in *://*) ;; *)
    echo "error: packed environment not found: $env_archive (build it with submit/pack_env.sh, or --env none)" >&2; exit 2 ;; esac
  args+=(--archives "$env_archive#environment")
  executor_python=./environment/bin/python
fi
if [ "$deploy_mode" = cluster ]; then
  # the driver runs on the cluster too, inside the same unpacked environment
  args+=(--conf "spark.pyspark.python=$executor_python" --conf "spark.pyspark.driver.python=$executor_python")
else
  export PYSPARK_DRIVER_PYTHON="$local_python"
fi
export PYSPARK_PYTHON="$executor_python"
# spark-submit keeps only the last --files: one list with the discovery script and the user's
files="${gpu_conf:+$HERE/getGpusResources.sh}"
[ -n "$user_files" ] && files="${files:+$files,}$user_files"
[ -n "$files" ] && args+=(--files "$files")

submit="${SPARK_SUBMIT:-$(command -v spark-submit || echo "$REPO/.venv/bin/spark-submit")}"
cmd=("$submit" "${args[@]}" "${passthrough[@]}" "$job_file" "$@")
if [ "$print" = 1 ]; then
  echo "PYSPARK_PYTHON=$PYSPARK_PYTHON${PYSPARK_DRIVER_PYTHON:+ PYSPARK_DRIVER_PYTHON=$PYSPARK_DRIVER_PYTHON}"
  printf '%q ' "${cmd[@]}"; echo
  sed 's/^/# /' "$props"
  exit 0
fi
cd "$REPO"
"${cmd[@]}"
