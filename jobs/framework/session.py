"""Spark session handling: reuse an active session, otherwise create (and later stop) one.

- Under `spark-submit` or in a notebook the active session (or spark-submit's master) is
  used as is; we only stop a session we created.
- Python workers run the driver's interpreter unless the user set `PYSPARK_PYTHON`, so an
  unactivated `.venv/bin/curate` still finds our packages (and img2dataset) on executors.
- Spark's own logging is quiet (ERROR) unless `--debug`.
- Under spark-submit, its settings (--conf, --properties-file, e.g. submit/conf/*.conf) win
  over `DEFAULT_CONF`.
- Cluster checks turn the usual silent failures into one-line `ClusterError`s: the master
  URL is probed before a session is created, and a tiny job with a time limit proves that
  executors start, import our packages and can use the GPUs they were given.
"""
from __future__ import annotations

import os
import re
import socket
import sys
import threading
import uuid
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlparse

from curation.errors import CurationError

_LOG4J = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2-quiet.properties")

#: settings every session we create gets (a user's --conf / spark-defaults still win
#: under spark-submit because we do not create the session there)
DEFAULT_CONF: Dict[str, str] = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "10000",
    # no byte limit on the batches sent to Python: with one (Spark's default is 64 MiB)
    # the JVM re-measures the Arrow batch after every row, ~20% of the label job's JVM time
    "spark.sql.execution.arrow.maxBytesPerBatch": "2147483647",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.shuffle.partitions": "16",
    "spark.python.worker.reuse": "true",
}


def under_spark_submit() -> bool:
    """True when this driver was started by spark-submit (the JVM already exists)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def python_for_workers() -> str:
    return os.environ.get("PYSPARK_PYTHON") or sys.executable


class ClusterError(CurationError):
    """The cluster cannot run the job: its master is unreachable, or its executors lack our
    Python environment or the resources (GPUs) the job asks for."""


def submitted_conf() -> Dict[str, str]:
    """The settings spark-submit received (--master, --conf, --properties-file); {} otherwise."""
    if not under_spark_submit():
        return {}
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # SparkConf() reads the JVM's settings only once it exists
    return dict(SparkConf().getAll())


def _master_endpoints(master: str) -> List[Tuple[str, int]]:
    """(host, port) pairs a master URL points at; [] for masters we cannot probe (local, yarn)."""
    if master.startswith("spark://"):
        # `spark://h1:7077,h2:7077` lists standby masters
        hosts = master[len("spark://"):].split(",")
        return [(h.rsplit(":", 1)[0], int(h.rsplit(":", 1)[1]) if ":" in h else 7077) for h in hosts]
    if master.startswith("k8s://"):
        url = master[len("k8s://"):]
        parsed = urlparse(url if "://" in url else "https://" + url)
        return [(parsed.hostname, parsed.port or (80 if parsed.scheme == "http" else 443))]
    if master == "yarn":
        return _yarn_resourcemanager()
    return []


def _yarn_resourcemanager() -> List[Tuple[str, int]]:
    """The ResourceManager address from yarn-site.xml (Spark's client would retry it for minutes)."""
    import xml.etree.ElementTree as ET

    for var in ("YARN_CONF_DIR", "HADOOP_CONF_DIR"):
        site = os.path.join(os.environ.get(var, ""), "yarn-site.xml")
        if os.environ.get(var) and os.path.exists(site):
            props = {p.findtext("name"): p.findtext("value") for p in ET.parse(site).getroot().iter("property")}
            address = props.get("yarn.resourcemanager.address")
            if address and props.get("yarn.resourcemanager.ha.enabled", "false") != "true":
                host, _, port = address.rpartition(":")
                return [(host, int(port))]
    return []


def check_master_reachable(master: str, timeout: float = 5.0) -> None:
    """Fail in seconds, with one line, when no endpoint of the master URL accepts a connection
    (Spark itself would retry for a minute or more and then print a stack trace)."""
    endpoints = _master_endpoints(master)
    errors = []
    for host, port in endpoints:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return
        except OSError as e:
            errors.append(f"{host}:{port} ({e.strerror or e})")
    if endpoints:
        raise ClusterError(f"cannot reach the Spark master {master}: {', '.join(errors)}; "
                           "is it running, and is this the right --master? (docs/cluster.md)")


#: applications whose executors passed `check_executors` (a notebook re-runs jobs in one app)
_CHECKED_APPS: set = set()


def _executor_probe(_rows):
    """Runs on executors: import our packages and report the interpreter and the GPUs given."""
    import importlib

    from pyspark import TaskContext

    for name in ("curation", "jobs"):
        importlib.import_module(name)
    resources = TaskContext.get().resources()
    gpus = list(resources["gpu"].addresses) if "gpu" in resources else []
    cuda = None
    if gpus:
        try:
            import torch
            cuda = torch.cuda.is_available()
        except ImportError:
            pass
    yield sys.executable, gpus, cuda


def _explain_task_failure(error: Exception, python: str) -> str:
    """One line from a failed probe job's Java/Python stack trace."""
    text = str(error)
    missing_python = re.search(r'Cannot run program "([^"]+)"', text)
    if missing_python:
        return (f"executors cannot start Python {missing_python.group(1)!r} (PYSPARK_PYTHON / spark.pyspark.python): "
                "ship the environment with --archives <env>.tar.gz#environment and "
                "PYSPARK_PYTHON=./environment/bin/python (submit/pack_env.sh, docs/cluster.md)")
    missing_module = re.search(r"(?:ModuleNotFoundError|ImportError): (No module named '[^']+'|[^\n]+)", text)
    if missing_module:
        return (f"executors' Python {python!r} cannot import our code: {missing_module.group(1)}; "
                "ship the packed environment (submit/pack_env.sh, docs/cluster.md)")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("\tat ")]
    return f"executors cannot run our Python code: {lines[-1] if lines else type(error).__name__}"


def check_executors(spark) -> None:
    """On a cluster, prove within a time limit that executors start, import our packages and
    can use the GPUs they were given; raise ClusterError with one line otherwise.

    Without it a missing environment shows up as a long stack trace mid-job, and a request
    no worker can satisfy (e.g. `spark.executor.resource.gpu.amount=1` on CPU-only workers)
    waits for executors forever. Local masters are skipped; the limit is
    `spark.curation.executorCheckTimeout` (default 300s; `0` turns the check off).
    """
    sc = spark.sparkContext
    if sc.master.startswith("local") or sc.applicationId in _CHECKED_APPS:
        return
    conf = sc._jsc.sc().getConf()
    timeout = conf.getTimeAsSeconds("spark.curation.executorCheckTimeout", "300s")
    if timeout <= 0:
        return
    python = conf.get("spark.pyspark.python", sc.pythonExec)
    group = f"curation-executor-check-{uuid.uuid4().hex[:8]}"
    outcome: Dict[str, object] = {}

    def probe() -> None:
        sc.setJobGroup(group, "curation: executors can run our Python code", interruptOnCancel=True)
        try:
            outcome["rows"] = sc.parallelize(range(2), 2).mapPartitions(_executor_probe).collect()
        except Exception as e:  # reported below as one line
            outcome["error"] = e

    worker = threading.Thread(target=probe, name=group, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        sc.cancelJobGroup(group)
        asked = ", ".join(f"{name} {conf.get(key, default)}" for name, key, default in (
            ("cores", "spark.executor.cores", "(all of a worker's)"), ("memory", "spark.executor.memory", "1g"),
            ("gpu", "spark.executor.resource.gpu.amount", "0")))
        started = sc._jsc.sc().getExecutorIds().size()
        why = ("no executor started" if started == 0 else
               f"{started} executor(s) started but did not finish a tiny task")
        raise ClusterError(f"{why} within {timeout}s on {sc.master} (each executor asks for {asked}): no worker "
                           "offers that; GPUs need spark.worker.resource.gpu.amount and a discovery script on "
                           "the workers (docs/cluster.md#gpus); raise spark.curation.executorCheckTimeout "
                           "if the cluster is only busy")
    if "error" in outcome:
        raise ClusterError(_explain_task_failure(outcome["error"], python))
    for executable, gpus, cuda in outcome["rows"]:
        if gpus and cuda is False:
            raise ClusterError(f"executors were given GPU(s) {gpus} by the discovery script, but CUDA is not "
                               f"usable from {executable} (torch.cuda.is_available() is False): check the "
                               "drivers and the torch build in the packed environment")
    _CHECKED_APPS.add(sc.applicationId)


def create_session(master: Optional[str] = None, app_name: str = "longtail-curation",
                   conf: Optional[Dict[str, str]] = None, debug: bool = False):
    """Create a new SparkSession (callers normally use `spark_session`)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # albumentations (imported by img2dataset on executors) would call PyPI on import
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    builder = SparkSession.builder.appName(app_name)
    submitted = submitted_conf()
    master = master or submitted.get("spark.master") or "local[*]"
    check_master_reachable(master)
    builder = builder.master(master)
    # spark-submit's --conf / --properties-file / spark-defaults.conf win over our defaults
    settings = {k: v for k, v in DEFAULT_CONF.items() if k not in submitted}
    if not debug and not under_spark_submit():
        java_opts = f"-Dlog4j2.configurationFile=file:{_LOG4J}"
        settings["spark.driver.extraJavaOptions"] = java_opts
        settings["spark.executor.extraJavaOptions"] = java_opts
    settings.update(conf or {})
    for k, v in settings.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("INFO" if debug else "ERROR")
    return spark


@contextmanager
def spark_session(master: Optional[str] = None, app_name: str = "longtail-curation",
                  conf: Optional[Dict[str, str]] = None, debug: bool = False) -> Iterator["SparkSession"]:
    """Yield the active session, or a new one that is stopped on exit."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        if master and active.sparkContext.master != master:
            print(f"note: using the active Spark session (master {active.sparkContext.master}); "
                  f"--master {master} ignored", file=sys.stderr)
        yield active
        return
    spark = create_session(master, app_name, conf, debug)
    try:
        yield spark
    finally:
        spark.stop()
