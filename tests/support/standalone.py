"""A real Spark standalone cluster (one master, N workers) on 127.0.0.1 for the cluster tests.

The daemons come from the pyspark installation of this interpreter (`spark-class
org.apache.spark.deploy.master.Master` / `...worker.Worker`), listen on free ports, and keep
their scratch space (SPARK_LOCAL_DIRS, SPARK_WORKER_DIR, logs) under one directory. Each
daemon is started in its own process group: the executors (and their Python workers) that a
worker launches share that group, so `kill_worker` takes a whole "machine" down at once and
`stop` leaves nothing running, even when a test failed.

Usage in a test module:

    from tests.support.standalone import StandaloneCluster, standalone_cluster  # noqa: F401 (fixture)

    def test_x(standalone_cluster):
        proc = standalone_cluster.submit(["jobs/x.py", "--out", out])
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Dict, List, Optional, Sequence, Tuple

import pytest
from tests.support import REPO


#: JVM options for the short-lived JVMs of the tests (daemons, drivers, executors): the C1
#: compiler only and the serial collector. Our jobs run seconds, not hours, so C2's
#: compilations and the parallel GC threads cost far more CPU than they save; on a 2-core
#: machine this halves the CPU time of a spark-submit (measured: 32s -> 17s user for
#: `concepts table` on local[1]). Behaviour is unchanged; only the JIT/GC differ.
TEST_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def fast_jvm_env(env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """`env` (default: os.environ) plus JDK_JAVA_OPTIONS=TEST_JVM_OPTIONS, which every `java`
    launched from it reads: spark-submit's driver JVM, the daemons, and the executors the
    workers start (they inherit the worker's environment)."""
    env = dict(os.environ if env is None else env)
    env["JDK_JAVA_OPTIONS"] = f"{env.get('JDK_JAVA_OPTIONS', '')} {TEST_JVM_OPTIONS}".strip()
    return env


def spark_home() -> str:
    import pyspark

    return os.path.dirname(os.path.abspath(pyspark.__file__))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


def _tail(path: str, n: int = 15) -> str:
    try:
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-n:])
    except OSError:
        return "(no log)"


class StandaloneCluster:
    """Master + `workers` workers with `cores` cores and `memory` each, all on 127.0.0.1.

    `worker_conf` is passed to every worker as Java system properties (e.g. GPU resources:
    `spark.worker.resource.gpu.amount`, `spark.worker.resource.gpu.discoveryScript`).
    """

    def __init__(self, root: str, workers: int = 2, cores: int = 1, memory: str = "1g",
                 worker_conf: Optional[Dict[str, str]] = None, worker_env: Optional[Dict[str, str]] = None):
        self.root = root
        self.n_workers = workers
        self.cores = cores
        self.memory = memory
        self.worker_conf = dict(worker_conf or {})
        self.worker_env = dict(worker_env or {})
        self.port = free_port()
        self.web_port = free_port()
        self.master_url = f"spark://127.0.0.1:{self.port}"
        self.master: Optional[subprocess.Popen] = None
        self.workers: List[Optional[subprocess.Popen]] = [None] * workers
        self.worker_web_ports = [free_port() for _ in range(workers)]

    # ------------------------------------------------------------------ processes
    def _env(self, name: str, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = fast_jvm_env()
        env.update({
            "SPARK_HOME": spark_home(),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOCAL_DIRS": os.path.join(self.root, name, "local"),
            "SPARK_WORKER_DIR": os.path.join(self.root, name, "work"),
            "SPARK_DAEMON_MEMORY": "256m",
            "PYSPARK_PYTHON": sys.executable,
        })
        env.update(extra or {})
        os.makedirs(env["SPARK_LOCAL_DIRS"], exist_ok=True)
        os.makedirs(env["SPARK_WORKER_DIR"], exist_ok=True)
        return env

    def _spawn(self, name: str, args: Sequence[str], extra_env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        log = open(self.log_path(name), "ab")
        try:
            return subprocess.Popen([os.path.join(spark_home(), "bin", "spark-class"), *args],
                                    stdout=log, stderr=subprocess.STDOUT, env=self._env(name, extra_env),
                                    cwd=self.root, start_new_session=True)
        finally:
            log.close()

    def log_path(self, name: str) -> str:
        return os.path.join(self.root, f"{name}.log")

    def worker_dir(self, i: int) -> str:
        return os.path.join(self.root, f"worker{i}", "work")

    def start_worker(self, i: int) -> None:
        opts = " ".join(f"-D{k}={v}" for k, v in self.worker_conf.items())
        env = dict(self.worker_env)
        if opts:
            env["SPARK_WORKER_OPTS"] = opts
        self.workers[i] = self._spawn(f"worker{i}", [
            "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
            "--cores", str(self.cores), "--memory", self.memory,
            "--webui-port", str(self.worker_web_ports[i]), self.master_url], env)

    def start(self, timeout: float = 120.0) -> "StandaloneCluster":
        os.makedirs(self.root, exist_ok=True)
        self.master = self._spawn("master", [
            "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
            "--port", str(self.port), "--webui-port", str(self.web_port)])
        for i in range(self.n_workers):
            self.start_worker(i)
        self.wait_for_workers(self.n_workers, timeout)
        return self

    def wait_for_workers(self, n: int, timeout: float = 120.0) -> None:
        """Block until `n` workers are ALIVE at the master (or raise with the daemons' logs)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for name, proc in [("master", self.master)] + [(f"worker{i}", w) for i, w in enumerate(self.workers)]:
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}):\n{_tail(self.log_path(name))}")
            try:
                if self.status().get("aliveworkers", 0) >= n:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        logs = "\n".join(f"--- {name}\n{_tail(self.log_path(name))}"
                         for name in ["master"] + [f"worker{i}" for i in range(self.n_workers)])
        raise RuntimeError(f"standalone cluster: {n} workers not registered after {timeout:.0f}s\n{logs}")

    def status(self) -> dict:
        """The master's JSON status (workers, applications)."""
        return get_json(f"http://127.0.0.1:{self.web_port}/json/")

    def worker_status(self, i: int) -> dict:
        """Worker i's JSON status (its executors, with their executor and application ids)."""
        return get_json(f"http://127.0.0.1:{self.worker_web_ports[i]}/json/")

    @staticmethod
    def _kill_group(proc: Optional[subprocess.Popen], sig: int) -> None:
        """Signal the daemon's whole group: it outlives the daemon while executors still run."""
        if proc is None:
            return
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker i with its executors and Python workers (a machine failure)."""
        proc = self.workers[i]
        self._kill_group(proc, signal.SIGKILL)
        if proc is not None:
            proc.wait(timeout=30)

    def restart_dead_workers(self, timeout: float = 120.0) -> None:
        """Bring killed workers back so that the next test sees the full cluster again."""
        for i, proc in enumerate(self.workers):
            if proc is None or proc.poll() is not None:
                self.start_worker(i)
        deadline = time.time() + timeout
        # a killed worker stays listed (DEAD) until the master times it out; count ALIVE ones
        while time.time() < deadline:
            alive = [w for w in self.status().get("workers", []) if w.get("state") == "ALIVE"]
            if len(alive) >= self.n_workers:
                return
            time.sleep(0.2)
        raise RuntimeError(f"workers did not come back within {timeout:.0f}s")

    def stop(self) -> None:
        procs = [p for p in self.workers + [self.master] if p is not None]
        for p in procs:
            self._kill_group(p, signal.SIGTERM)
        deadline = time.time() + 20
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
            self._kill_group(p, signal.SIGKILL)
            p.wait(timeout=30)

    def __enter__(self) -> "StandaloneCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ spark-submit
    def submit_cmd(self, args: Sequence[str], conf: Optional[Dict[str, str]] = None) -> List[str]:
        """`spark-submit --master <this cluster> [--conf k=v ...] args` (args: job file + options)."""
        cmd = [os.path.join(os.path.dirname(sys.executable), "spark-submit"), "--master", self.master_url,
               "--executor-memory", "768m", "--driver-memory", "768m"]
        for k, v in (conf or {}).items():
            cmd += ["--conf", f"{k}={v}"]
        return cmd + list(args)

    def submit_env(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = fast_jvm_env()
        env.update({"SPARK_HOME": spark_home(), "SPARK_LOCAL_IP": "127.0.0.1",
                    "PYSPARK_PYTHON": sys.executable,
                    "SPARK_LOCAL_DIRS": os.path.join(self.root, "driver", "local")})
        os.makedirs(env["SPARK_LOCAL_DIRS"], exist_ok=True)
        env.update(extra or {})
        return env

    def submit(self, args: Sequence[str], conf: Optional[Dict[str, str]] = None,
               env: Optional[Dict[str, str]] = None, timeout: float = 300.0) -> subprocess.CompletedProcess:
        """Run spark-submit to completion from the repository root (killed after `timeout`)."""
        return subprocess.run(self.submit_cmd(args, conf), cwd=REPO, env=self.submit_env(env),
                              capture_output=True, text=True, timeout=timeout)

    def popen(self, args: Sequence[str], conf: Optional[Dict[str, str]] = None,
              env: Optional[Dict[str, str]] = None, log: Optional[str] = None) -> subprocess.Popen:
        """Start spark-submit in the background (own process group, so a test can kill the driver)."""
        out = open(log, "wb") if log else subprocess.DEVNULL
        try:
            return subprocess.Popen(self.submit_cmd(args, conf), cwd=REPO, env=self.submit_env(env),
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            if log:
                out.close()


def fake_gpu_workers(root: str) -> Tuple[Dict[str, str], Dict[str, str]]:
    """(worker_conf, worker_env) under which each worker announces one GPU, "0", through our
    discovery script submit/getGpusResources.sh and a stand-in `nvidia-smi` on its PATH, so
    that GPU scheduling can be tested on machines without a GPU."""
    bin_dir = os.path.join(root, "fake-bin")
    os.makedirs(bin_dir, exist_ok=True)
    nvidia_smi = os.path.join(bin_dir, "nvidia-smi")
    with open(nvidia_smi, "w") as fh:
        fh.write("#!/bin/sh\n# stands in for `nvidia-smi --query-gpu=index --format=csv,noheader`\necho 0\n")
    os.chmod(nvidia_smi, 0o755)
    conf = {"spark.worker.resource.gpu.amount": "1",
            "spark.worker.resource.gpu.discoveryScript": os.path.join(REPO, "submit", "getGpusResources.sh")}
    return conf, {"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory):
    """A master and two one-core workers (each announcing one stand-in GPU) for the tests of
    one module; always stopped. Applications that ask for no GPU get none."""
    root = str(tmp_path_factory.mktemp("standalone"))
    worker_conf, worker_env = fake_gpu_workers(root)
    with StandaloneCluster(root, workers=2, cores=1, worker_conf=worker_conf, worker_env=worker_env) as cluster:
        yield cluster
