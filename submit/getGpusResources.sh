#!/usr/bin/env bash
# Spark GPU discovery script: prints the GPUs this executor/worker may use as
#   {"name": "gpu", "addresses": ["0", "1"]}
# Point spark.{worker,executor,driver}.resource.gpu.discoveryScript at it (submit/conf/gpu.conf).
#
# - Addresses are CUDA device indices as the task's process sees them (what our encoders
#   pass to torch as cuda:<address>). When CUDA_VISIBLE_DEVICES restricts the devices (YARN
#   and Kubernetes GPU isolation, a shared node), CUDA renumbers them from 0, so we do too.
# - No nvidia-smi or no GPU: an empty list, so Spark refuses an executor that asks for a GPU
#   with "...less than what the user requested" instead of a task failing later.
set -u

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo '{"name": "gpu", "addresses": []}'
  exit 0
fi
indices=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | tr -d ' ' | grep -E '^[0-9]+$')
if [ "${CUDA_VISIBLE_DEVICES+set}" = set ]; then
  visible=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c .)
  indices=$(seq 0 $((visible - 1)) 2>/dev/null)
fi
addresses=$(echo "$indices" | grep . | sed 's/.*/"&"/' | paste -sd, -)
echo "{\"name\": \"gpu\", \"addresses\": [${addresses}]}"
