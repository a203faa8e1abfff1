"""Jobs on a real Spark standalone cluster (a master and two one-core workers on 127.0.0.1).

The tests marked `cluster` spark-submit job files the way docs/cluster.md does; skip them
with `pytest -m "not cluster"` (`make test` runs them). The unmarked ones check the wrapper,
the discovery script and the master-URL parsing alone.

Time goes into start-up, not data: each application pays a driver JVM, executor JVMs,
Python workers importing pandas/torch/img2dataset and the executor check. So the module
starts one cluster (`standalone_cluster`, module scope; a killed worker is restarted, not
the cluster), runs all JVMs with TEST_JVM_OPTIONS (C1 only, serial GC: half the CPU), submits
the bad-input applications side by side, and covers the pipeline and both faults with two
`laionet run` applications plus one local[1] reference process running meanwhile. About
4-7 minutes on a busy 2-core machine.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.support.standalone import (REPO, StandaloneCluster, free_port, get_json,  # noqa: F401 (fixture)
                        standalone_cluster)

SUBMIT = os.path.join(REPO, "submit")
on_cluster = pytest.mark.cluster


#: small executors for 1-core, 1 GiB workers; everything else comes from submit/conf/
SMALL = {"spark.executor.memory": "768m", "spark.driver.memory": "768m", "spark.executor.cores": "1",
         "spark.sql.shuffle.partitions": "8"}


def submit_cmd(cluster: StandaloneCluster, job_file: str, args, conf=None, env_archive: str = "none"):
    """submit/submit.sh as a user runs it (conf files from submit/conf/), with small executors;
    by default the workers run this checkout's venv (`--env none`: same machine, no archive)."""
    confs = [x for k, v in {**SMALL, **(conf or {})}.items() for x in ("--conf", f"{k}={v}")]
    return [os.path.join(SUBMIT, "submit.sh"), "--env", env_archive, *confs, cluster.master_url, job_file, *args]


def submit_wrapped(cluster, job_file, args, conf=None, timeout=600, env_archive: str = "none"):
    proc = subprocess.run(submit_cmd(cluster, job_file, args, conf, env_archive), env=cluster.submit_env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{job_file} failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
    return proc


def popen_wrapped(cluster, job_file, args, log: str, conf=None) -> subprocess.Popen:
    """Start submit.sh in its own process group (driver JVM + Python driver can be killed together)."""
    with open(log, "wb") as out:
        return subprocess.Popen(submit_cmd(cluster, job_file, args, conf), env=cluster.submit_env(),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _error_line(output: str) -> str:
    """The job's one-line error (spark-submit passes the Python driver's stderr to stdout)."""
    lines = [ln for ln in output.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, f"expected one 'error:' line\n{output[-3000:]}"
    return lines[0]


def _read_dataset(path: str) -> pd.DataFrame:
    return pd.read_parquet(path).sort_values("wnid").reset_index(drop=True)


# ---------------------------------------------------------------- the pieces alone (fast)
def _discover(path_dir: str, **env) -> dict:
    run_env = {"PATH": f"{path_dir}:/usr/bin:/bin", **env}
    out = subprocess.run([os.path.join(SUBMIT, "getGpusResources.sh")], env=run_env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_discovery_script_reports_gpus_as_cuda_numbers_them(tmp_path):
    nvidia_smi = tmp_path / "nvidia-smi"
    nvidia_smi.write_text("#!/bin/sh\necho 0\necho 1\necho 2\n")
    nvidia_smi.chmod(0o755)
    assert _discover(str(tmp_path)) == {"name": "gpu", "addresses": ["0", "1", "2"]}
    # CUDA renumbers the visible devices from 0
    assert _discover(str(tmp_path), CUDA_VISIBLE_DEVICES="2,1")["addresses"] == ["0", "1"]
    assert _discover(str(tmp_path), CUDA_VISIBLE_DEVICES="")["addresses"] == []
    if not shutil.which("nvidia-smi", path="/usr/bin:/bin"):
        assert _discover(str(tmp_path / "empty"))["addresses"] == []  # no nvidia-smi, no GPU


def _print_submit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(SUBMIT, "submit.sh"), "--print", *args],
                          capture_output=True, text=True, timeout=30)


def test_submit_wrapper_layers_conf_files_and_ships_the_environment(tmp_path):
    archive = tmp_path / "env.tar.gz"
    archive.write_bytes(b"")
    proc = _print_submit("--gpu", "--env", str(archive), "--files", "/models/ckpt.bin",
                         "--conf", "spark.executor.memory=2g", "yarn", "jobs/laionet_similarity.py", "--out", "x")
    assert proc.returncode == 0, proc.stderr
    command, props = proc.stdout.splitlines()[1], proc.stdout.splitlines()[2:]
    assert f"--archives {archive}#environment" in command
    # YARN runs the driver in the cluster too: both Pythons come from the archive
    assert "spark.pyspark.python=./environment/bin/python" in command
    assert "spark.pyspark.driver.python=./environment/bin/python" in command
    # one --files list: the discovery script and the user's files
    assert "getGpusResources.sh\\,/models/ckpt.bin" in command  # printf %q escapes the comma
    assert command.index("--properties-file") < command.index("spark.executor.memory=2g")  # --conf wins
    keys = [ln.split()[1] for ln in props if len(ln.split()) > 2 and not ln.startswith("# #")]
    # common.conf, then yarn.conf, then gpu.conf (later lines win in a properties file)
    assert keys.index("spark.executor.cores") < keys.index("spark.submit.deployMode") < keys.index(
        "spark.executor.resource.gpu.amount")

    local = _print_submit("--env", "none", "spark://h:7077", "jobs/concepts.py", "table", "--out", "x")
    assert local.returncode == 0 and "PYSPARK_DRIVER_PYTHON=" in local.stdout.splitlines()[0]

    missing = _print_submit("--env", str(tmp_path / "absent.tar.gz"), "spark://h:7077", "jobs/concepts.py", "table")
    assert missing.returncode == 2 and "packed environment not found" in missing.stderr
    bad_master = _print_submit("--env", "none", "mesos://h:5050", "jobs/concepts.py")
    assert bad_master.returncode == 2 and "MASTER must be" in bad_master.stderr


def test_master_urls_name_the_endpoints_to_probe():
    from jobs.framework.session import _master_endpoints

    assert _master_endpoints("spark://a:7077,b:7078") == [("a", 7077), ("b", 7078)]
    assert _master_endpoints("spark://a") == [("a", 7077)]
    assert _master_endpoints("k8s://https://api.example.org:6443") == [("api.example.org", 6443)]
    assert _master_endpoints("k8s://api.example.org") == [("api.example.org", 443)]
    assert _master_endpoints("local[2]") == [] and _master_endpoints("local-cluster[2,1,1024]") == []


# ---------------------------------------------------------------- bad input: clear errors, no hang
def test_unreachable_master_is_one_line_and_fast(curate_cmd, tmp_path):
    out = str(tmp_path / "concepts")
    master = f"spark://127.0.0.1:{free_port()}"  # nothing listens there
    t0 = time.time()
    proc = subprocess.run(curate_cmd + ["concepts", "table", "--out", out, "--master", master],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    line = _error_line(proc.stdout + proc.stderr)
    assert "cannot reach the Spark master" in line and master in line
    assert time.time() - t0 < 60
    assert not os.path.exists(out)


def _system_python():
    """/usr/bin/python3 when it is the venv's Python version (so it can run the driver's
    pickles) but lacks our packages; None otherwise."""
    system_python = "/usr/bin/python3"
    if not os.path.exists(system_python):
        return None
    probe = subprocess.run([system_python, "-c", "import sys; print(sys.version_info[:2])"],
                           capture_output=True, text=True)
    return system_python if probe.stdout.strip() == str(sys.version_info[:2]) else None


class Submitted:
    """One finished spark-submit of the bad-input tests: exit code, output, seconds, --out."""

    def __init__(self, returncode: int, output: str, seconds: float, out: str):
        self.returncode, self.output, self.seconds, self.out = returncode, output, seconds, out

    def error_line(self) -> str:
        assert self.returncode == 2, f"rc={self.returncode}\n{self.output[-3000:]}"
        return _error_line(self.output)


@pytest.fixture(scope="module")
def bad_input(standalone_cluster, tmp_path_factory):
    """The applications of the bad-input tests (`concepts table` each), submitted together and
    awaited together: they are independent, and most of each one's time is start-up (JVMs,
    Python imports) or waiting, so side by side they take about as long as the slowest one.
    Each asks for at most one executor (spark.cores.max=1): two run on the two workers, the
    others wait for a free one (well within the executor check's limit)."""
    root = tmp_path_factory.mktemp("bad-input")
    never_started = StandaloneCluster(str(root / "never-started"))  # its ports are free, nothing listens
    cases = {
        "unreachable_master": (never_started, {}, {}),
        # the usual mistake: PYSPARK_PYTHON=./environment/bin/python without --archives
        "no_python_environment": (standalone_cluster, {}, {"PYSPARK_DRIVER_PYTHON": sys.executable,
                                                           "PYSPARK_PYTHON": "./environment/bin/python"}),
        # each worker has one GPU: an executor asking for two never starts
        "gpu_nobody_offers": (standalone_cluster, {"spark.executor.resource.gpu.amount": "2",
                                                   "spark.task.resource.gpu.amount": "1",
                                                   "spark.curation.executorCheckTimeout": "5s"}, {}),
        "gpu_without_cuda": (standalone_cluster, {"spark.executor.resource.gpu.amount": "1",
                                                  "spark.task.resource.gpu.amount": "1"}, {}),
    }
    if _system_python():
        cases["python_without_our_packages"] = (standalone_cluster, {}, {"PYSPARK_DRIVER_PYTHON": sys.executable,
                                                                         "PYSPARK_PYTHON": _system_python()})
    running = {}
    for name, (cluster, conf, env) in cases.items():
        out, log = str(root / name / "concepts"), str(root / f"{name}.log")
        os.makedirs(os.path.dirname(out))
        proc = cluster.popen(["jobs/concepts.py", "table", "--out", out],
                             conf={"spark.cores.max": "1", **conf}, env=env, log=log)
        running[name] = (proc, time.time(), out, log)
    done = {}
    try:
        deadline = time.time() + 300
        while len(done) < len(running) and time.time() < deadline:
            for name, (proc, t0, out, log) in running.items():
                if name not in done and proc.poll() is not None:
                    done[name] = Submitted(proc.returncode, open(log, errors="replace").read(), time.time() - t0, out)
            time.sleep(0.1)
    finally:
        for name, (proc, *_rest) in running.items():
            if proc.poll() is None:  # hung: the tests of the missing names fail below
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
    return done


def _finished(bad_input, name: str) -> Submitted:
    assert name in bad_input, f"{name}: spark-submit did not finish within 300s (a hang)"
    return bad_input[name]


@on_cluster
def test_unreachable_master_under_spark_submit(bad_input):
    run = _finished(bad_input, "unreachable_master")
    assert "cannot reach the Spark master spark://127.0.0.1:" in run.error_line()
    assert not os.path.exists(run.out)


@on_cluster
def test_executors_without_the_python_environment(bad_input):
    """The usual mistake: PYSPARK_PYTHON=./environment/bin/python without --archives."""
    run = _finished(bad_input, "no_python_environment")
    line = run.error_line()
    assert "executors cannot start Python './environment/bin/python'" in line
    assert "--archives" in line
    assert not os.path.exists(run.out)


@on_cluster
def test_executors_whose_python_lacks_our_packages(bad_input):
    if not _system_python():
        pytest.skip("needs a system python3 of the venv's version (without our packages)")
    run = _finished(bad_input, "python_without_our_packages")
    assert "cannot import our code: No module named" in run.error_line()
    assert not os.path.exists(run.out)


@on_cluster
def test_gpu_requested_where_no_worker_has_one(bad_input):
    """Each worker has one GPU; an executor asking for two never starts. Without the check
    the application would wait for an executor forever."""
    run = _finished(bad_input, "gpu_nobody_offers")
    line = run.error_line()
    assert "no executor started within 5s" in line and "gpu 2" in line
    assert run.seconds < 180
    assert not os.path.exists(run.out)


@on_cluster
def test_gpu_scheduling_with_the_discovery_script(standalone_cluster, bad_input):
    """The workers announced GPU '0' through submit/getGpusResources.sh (from a stand-in
    nvidia-smi); an executor asking for one gets it, and the check finds that CUDA is not
    usable there (this machine has no GPU), instead of a task failing mid-job."""
    workers = [w for w in standalone_cluster.status()["workers"] if w["state"] == "ALIVE"]
    assert workers and all(w["resources"]["gpu"]["addresses"] == ["0"] for w in workers)
    run = _finished(bad_input, "gpu_without_cuda")
    line = run.error_line()
    assert "given GPU(s) ['0']" in line and "CUDA is not usable" in line
    assert not os.path.exists(run.out)


# ---------------------------------------------------------------- the packed environment
@on_cluster
def test_packed_environment_through_the_submit_wrapper(standalone_cluster, tmp_path):
    """submit/pack_env.sh + submit/submit.sh: executors run the Python of the shipped archive
    (`./environment/bin/python`), which holds a regular install of our code."""
    from curation import concepts

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("")  # our code only: what this job runs on executors needs nothing else
    archive = tmp_path / "longtail-env.tar.gz"
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    subprocess.run([os.path.join(SUBMIT, "pack_env.sh"), "--requirements", str(requirements),
                    "--venv", str(tmp_path / "pack-venv"), str(archive)], check=True, env=env,
                   capture_output=True, timeout=300)
    out = str(tmp_path / "concepts")
    earlier = {app["id"] for app in standalone_cluster.status()["completedapps"]}
    submit_wrapped(standalone_cluster, "jobs/concepts.py", ["table", "--out", out], env_archive=str(archive))

    got, expected = _read_dataset(out), concepts.load_concepts()
    assert list(got["wnid"]) == list(expected["wnid"]) and list(got["label"]) == list(expected["label"])
    assert json.load(open(os.path.join(out, "_report.json")))["kept"] == 1000
    assert not [p for p in os.listdir(tmp_path) if "__tmp-" in p]
    # it ran as an application of this cluster (the bad-input ones have the same name), ...
    (app,) = [a for a in standalone_cluster.status()["completedapps"] if a["id"] not in earlier]
    assert app["name"] == "curate concepts table"
    # ... whose executors unpacked the archive into their working directories
    unpacked = [d for i in range(2) for d in glob.glob(os.path.join(standalone_cluster.worker_dir(i), app["id"], "*"))
                if os.path.exists(os.path.join(d, "environment", "bin", "python"))]
    assert unpacked, f"no executor working directory of {app['id']} holds ./environment"


# ---------------------------------------------------------------- the LAIONet pipeline
# Two applications on the cluster and one local[1] reference run (in the suite's local[1]
# application, tests/spark_app.py) cover the pipeline and both faults (each spark-submit pays a driver JVM, two executor JVMs, Python workers that
# import torch and img2dataset, and the executor check, so their number sets the time):
#   1. `laionet run` (all six stages, one spark-submit): a worker is SIGKILLed while a label
#      task runs on it, and the driver is SIGKILLed as soon as the label stage is complete;
#   2. the same command again: it skips label and runs subset ... arrange to the end;
#   meanwhile the same preset runs under local[1] (the reference).
# The tests below each assert one part of that story.
STAGES = {"label": ["laion_index", "wnid", "lemma"], "subset": ["laion_index"],
          "similarity": ["laion_index"], "filter": ["laion_index"]}
ALL_STAGES = ["label", "subset", "similarity", "filter", "download", "arrange"]
#: the preset of the test runs: every stage, tiny shards, quick failures for the 404/timeout URLs
#: (the server stalls `timeout` URLs for 5s; 2s of client timeout leaves room for a busy machine)
PRESET = {"stages": ALL_STAGES, "threshold": 0.0, "remove_nsfw": True, "partitions": 3,
          "number_sample_per_shard": 60, "thread_count": 4, "retries": 0, "timeout": 2.0}


class Pipeline:
    """Sample LAION parts served by a local image server, a tiny CLIP, the preset file, and the
    reference outputs of `laionet run` on local[1] (computed in the background)."""

    def __init__(self, root: str, laion: str, model, image_base_url: str):
        import yaml

        self.root, self.laion, self.model, self.image_base_url = root, laion, model, image_base_url
        self.preset = os.path.join(root, "test-preset.yaml")
        with open(self.preset, "w") as fh:
            yaml.safe_dump(PRESET, fh)
        self._reference = None
        self._expected = None

    def args(self, work: str):
        """`laionet run` options (the preset plus this run's paths)."""
        return ["--config", self.preset, "--laion", self.laion, "--work-dir", work,
                "--model", self.model[0], "--pretrained", self.model[1]]

    def start_reference(self, local1_app) -> None:
        self.reference_work = os.path.join(self.root, "local1")
        self._reference = local1_app
        local1_app.send("laionet", "run", *self.args(self.reference_work))

    @property
    def expected(self) -> dict:
        """The local[1] outputs (waits for the reference run)."""
        if self._expected is None:
            res = self._reference.receive(timeout=900)
            assert res.returncode == 0, f"laionet run on local[1]:\n{res.output}"
            self._expected = self.read(self.reference_work)
            assert len(self._expected["filter"]) > 0 and len(self._expected["tree"]) > 0
        return self._expected

    def stop(self) -> None:
        if self._reference is not None and self._expected is None:
            self._reference.receive(timeout=900)  # the application serves the next test after it

    @staticmethod
    def read_stages(work: str) -> dict:
        found = {name: pd.read_parquet(f"{work}/{name}").sort_values(keys).reset_index(drop=True)
                 for name, keys in STAGES.items()}
        found["frequency"] = open(f"{work}/filter.class_frequency.txt").read()
        return found

    @classmethod
    def read(cls, work: str) -> dict:
        """Everything the pipeline produced, in a form that does not depend on partitioning."""
        found = cls.read_stages(work)
        report = json.load(open(f"{work}/download.report.json"))
        found["download"] = {k: report[k] for k in ("read", "kept", "dropped")}
        (success,) = glob.glob(f"{work}/arrange_success*.parquet")
        found["success_name"] = os.path.basename(success)
        found["success"] = pd.read_parquet(success).sort_values("laion_index").reset_index(drop=True)
        tree = {}
        for folder, _, files in os.walk(f"{work}/arrange"):
            for name in files:
                path = os.path.join(folder, name)
                tree[os.path.relpath(path, f"{work}/arrange")] = open(path, "rb").read()
        found["tree"] = tree
        return found


def assert_same(got: dict, expected: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got[key], value, check_exact=True, obj=key)
        else:
            assert got[key] == value, key


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, local1_app):
    """Inputs, and the local[1] reference run started in the background (`pipeline.expected`)."""
    from curation.samples.images import SampleImageServer
    from jobs import sample_data
    from jobs.framework.config import build_config
    from tests.support.tiny_clip import write_tiny_clip

    root = str(tmp_path_factory.mktemp("pipeline"))
    with SampleImageServer(stall_seconds=5.0, huge_side=800) as server:
        laion = os.path.join(root, "laion")
        sample_data.run(None, build_config(sample_data.SampleLaionConfig, {
            "out": laion, "rows": 600, "parts": 3, "seed": 5, "image_base_url": server.base_url}))
        p = Pipeline(root, laion, write_tiny_clip(os.path.join(root, "tiny_clip")), server.base_url)
        p.start_reference(local1_app)
        try:
            yield p
        finally:
            p.stop()


def _kill_a_worker_running_a_task(cluster: StandaloneCluster, ui_port: int, driver: subprocess.Popen,
                                  until: str, timeout: float = 300.0) -> int:
    """Once the job (not our executor check) has a task running on some executor, SIGKILL the
    worker that hosts that executor; returns the worker's number. Fails when the file `until`
    (the stage's report) appears first: the fault must hit the stage while it runs."""
    api = f"http://127.0.0.1:{ui_port}/api/v1/applications"
    deadline = time.time() + timeout
    while time.time() < deadline and driver.poll() is None and not os.path.exists(until):
        try:
            app = get_json(api)[0]["id"]
            jobs = get_json(f"{api}/{app}/jobs?status=running")
            if any(not str(j.get("jobGroup", "")).startswith("curation-executor-check") for j in jobs):
                busy = {e["id"] for e in get_json(f"{api}/{app}/executors")
                        if e["id"] != "driver" and e["activeTasks"] > 0}
                for i in range(cluster.n_workers):
                    if any(str(ex["id"]) in busy and ex["appid"] == app
                           for ex in cluster.worker_status(i)["executors"]):
                        cluster.kill_worker(i)
                        return i
        except (OSError, IndexError, KeyError, ValueError):
            pass  # the driver's UI is not up yet
        time.sleep(0.1)
    raise AssertionError(f"never saw a task of the job running on an executor before {until} appeared "
                         f"(driver rc={driver.poll()})")


@pytest.fixture(scope="module")
def faulty_run(standalone_cluster, pipeline, tmp_path_factory):
    """`laionet run` through submit/submit.sh, hit by both faults, then run again (see above).
    Returns what the tests check: the logs, the state the crash left, the final outputs."""
    tmp = tmp_path_factory.mktemp("faulty-run")
    work, log, ui_port = str(tmp / "run"), str(tmp / "crashed.log"), free_port()
    label_report = f"{work}/label/_report.json"
    driver = popen_wrapped(standalone_cluster, "jobs/laionet_run.py", pipeline.args(work), log,
                           conf={"spark.ui.enabled": "true", "spark.ui.port": str(ui_port)})
    try:
        _kill_a_worker_running_a_task(standalone_cluster, ui_port, driver, until=label_report)
        deadline = time.time() + 400
        while not os.path.exists(label_report) and driver.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert os.path.exists(label_report), open(log).read()[-4000:]
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)  # the driver dies: spark-submit, its JVM and the Python driver
        driver.wait(timeout=60)
        standalone_cluster.restart_dead_workers()
    run = {"crashed_log": open(log).read(), "label_mtime": os.path.getmtime(label_report),
           "left": {name: os.path.exists(os.path.join(work, name, "_report.json"))
                    for name in os.listdir(work) if os.path.isdir(os.path.join(work, name))},
           "label": pd.read_parquet(f"{work}/label").sort_values(STAGES["label"]).reset_index(drop=True)}
    run["rerun"] = submit_wrapped(standalone_cluster, "jobs/laionet_run.py", pipeline.args(work)).stdout
    run["label_mtime_after"] = os.path.getmtime(label_report)
    run["outputs"] = Pipeline.read(work)
    return run


@on_cluster
def test_worker_killed_mid_label_job_same_output(faulty_run, pipeline):
    """A worker (its executor and Python workers) SIGKILLed while a label task ran on it: the
    task ran again elsewhere and label's output is the local[1] one."""
    assert "Lost executor" in faulty_run["crashed_log"]
    pd.testing.assert_frame_equal(faulty_run["label"], pipeline.expected["label"], check_exact=True)


@on_cluster
def test_rerun_after_a_driver_crash_resumes_from_the_last_complete_stage(faulty_run):
    left = faulty_run["left"]
    assert left.get("label") is True and left.get("filter") is not True, left
    # no partial output where a complete one is expected: a stage folder exists only complete
    assert all(complete for name, complete in left.items() if "__tmp-" not in name), left
    rerun = faulty_run["rerun"]
    assert "[label] skipped" in rerun
    assert all(f"[{s}] running" in rerun for s in ALL_STAGES[1:]), rerun[-3000:]
    assert faulty_run["label_mtime_after"] == faulty_run["label_mtime"]


@on_cluster
def test_pipeline_on_the_cluster_matches_local1(faulty_run, pipeline, standalone_cluster):
    """label -> filter, download from the image server and arrange, all through `laionet run`
    on the cluster (across the crash and the re-run): the same outputs as on local[1]."""
    assert_same(faulty_run["outputs"], pipeline.expected)
    apps = [a["name"] for a in standalone_cluster.status()["completedapps"]]
    assert apps.count("curate laionet run") >= 2, apps
