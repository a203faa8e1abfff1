# Spark standalone GPU worker: append to $SPARK_HOME/conf/spark-env.sh on each GPU node
# (before start-worker.sh) so that the worker announces its GPUs to the master, which then
# gives each executor asking for spark.executor.resource.gpu.amount=1 one of them.
# LONGTAIL_HOME: where this repository is checked out on the node.
LONGTAIL_HOME=${LONGTAIL_HOME:-/opt/longtail-curation}
GPUS_PER_WORKER=${GPUS_PER_WORKER:-$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | wc -l)}
SPARK_WORKER_OPTS="${SPARK_WORKER_OPTS:-} -Dspark.worker.resource.gpu.amount=${GPUS_PER_WORKER}"
SPARK_WORKER_OPTS="${SPARK_WORKER_OPTS} -Dspark.worker.resource.gpu.discoveryScript=${LONGTAIL_HOME}/submit/getGpusResources.sh"
export SPARK_WORKER_OPTS
