"""Spark session handling: reuse an active session, otherwise create (and later stop) one.

- Under `spark-submit` or in a notebook the active session (or spark-submit's master) is
  used as is; we only stop a session we created.
- Python workers run the driver's interpreter unless the user set `PYSPARK_PYTHON`, so an
  unactivated `.venv/bin/curate` still finds our packages (and img2dataset) on executors.
- Spark's own logging is quiet (ERROR) unless `--debug`.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

_LOG4J = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2-quiet.properties")

#: settings every session we create gets (a user's --conf / spark-defaults still win
#: under spark-submit because we do not create the session there)
DEFAULT_CONF: Dict[str, str] = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "10000",
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


def create_session(master: Optional[str] = None, app_name: str = "longtail-curation",
                   conf: Optional[Dict[str, str]] = None, debug: bool = False):
    """Create a new SparkSession (callers normally use `spark_session`)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    elif not under_spark_submit():
        builder = builder.master("local[*]")
    settings = dict(DEFAULT_CONF)
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
