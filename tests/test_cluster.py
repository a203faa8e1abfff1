"""Jobs on a real Spark standalone cluster (a master and two one-core workers on 127.0.0.1).

The tests marked `cluster` spark-submit job files the way docs/cluster.md does, so they are
slow (tens of seconds each on a busy 2-core machine); skip them with `pytest -m "not cluster"`.
The unmarked ones check the wrapper, the discovery script and the master-URL parsing alone.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest

from standalone import REPO, StandaloneCluster, free_port, get_json, standalone_cluster  # noqa: F401 (fixture)

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


def _error_line(proc: subprocess.CompletedProcess) -> str:
    """The job's one-line error (spark-submit passes the Python driver's stderr to stdout)."""
    output = proc.stdout + proc.stderr
    lines = [ln for ln in output.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, f"expected one 'error:' line, rc={proc.returncode}\n{output[-3000:]}"
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
    from jobs.session import _master_endpoints

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
    line = _error_line(proc)
    assert "cannot reach the Spark master" in line and master in line
    assert time.time() - t0 < 60
    assert not os.path.exists(out)


@on_cluster
def test_unreachable_master_under_spark_submit(tmp_path):
    out = str(tmp_path / "concepts")
    cluster = StandaloneCluster(str(tmp_path / "never-started"))  # its ports are free, nothing listens
    proc = cluster.submit(["jobs/concepts.py", "table", "--out", out], timeout=120)
    assert proc.returncode == 2
    assert f"cannot reach the Spark master {cluster.master_url}" in _error_line(proc)
    assert not os.path.exists(out)


@on_cluster
def test_executors_without_the_python_environment(standalone_cluster, tmp_path):
    """The usual mistake: PYSPARK_PYTHON=./environment/bin/python without --archives."""
    out = str(tmp_path / "concepts")
    proc = standalone_cluster.submit(["jobs/concepts.py", "table", "--out", out],
                                     env={"PYSPARK_DRIVER_PYTHON": sys.executable,
                                          "PYSPARK_PYTHON": "./environment/bin/python"})
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = _error_line(proc)
    assert "executors cannot start Python './environment/bin/python'" in line
    assert "--archives" in line
    assert not os.path.exists(out)


@on_cluster
def test_executors_whose_python_lacks_our_packages(standalone_cluster, tmp_path):
    system_python = "/usr/bin/python3"
    probe = subprocess.run([system_python, "-c", "import sys; print(sys.version_info[:2])"],
                           capture_output=True, text=True) if os.path.exists(system_python) else None
    if probe is None or probe.stdout.strip() != str(sys.version_info[:2]):
        pytest.skip("needs a system python3 of the venv's version (without our packages)")
    out = str(tmp_path / "concepts")
    proc = standalone_cluster.submit(["jobs/concepts.py", "table", "--out", out],
                                     env={"PYSPARK_DRIVER_PYTHON": sys.executable, "PYSPARK_PYTHON": system_python})
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = _error_line(proc)
    assert "cannot import our code: No module named" in line
    assert not os.path.exists(out)


@on_cluster
def test_gpu_requested_where_no_worker_has_one(standalone_cluster, tmp_path):
    """Each worker has one GPU; an executor asking for two never starts. Without the check
    the application would wait for an executor forever."""
    out = str(tmp_path / "concepts")
    t0 = time.time()
    proc = standalone_cluster.submit(["jobs/concepts.py", "table", "--out", out], conf={
        "spark.executor.resource.gpu.amount": "2", "spark.task.resource.gpu.amount": "1",
        "spark.curation.executorCheckTimeout": "15s"}, timeout=240)
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = _error_line(proc)
    assert "no executor started within 15s" in line and "gpu 2" in line
    assert time.time() - t0 < 180
    assert not os.path.exists(out)


@on_cluster
def test_gpu_scheduling_with_the_discovery_script(standalone_cluster, tmp_path):
    """The workers announced GPU '0' through submit/getGpusResources.sh (from a stand-in
    nvidia-smi); an executor asking for one gets it, and the check finds that CUDA is not
    usable there (this machine has no GPU), instead of a task failing mid-job."""
    workers = [w for w in standalone_cluster.status()["workers"] if w["state"] == "ALIVE"]
    assert workers and all(w["resources"]["gpu"]["addresses"] == ["0"] for w in workers)
    out = str(tmp_path / "concepts")
    proc = standalone_cluster.submit(["jobs/concepts.py", "table", "--out", out], conf={
        "spark.executor.resource.gpu.amount": "1", "spark.task.resource.gpu.amount": "1"}, timeout=240)
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = _error_line(proc)
    assert "given GPU(s) ['0']" in line and "CUDA is not usable" in line
    assert not os.path.exists(out)


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
    submit_wrapped(standalone_cluster, "jobs/concepts.py", ["table", "--out", out], env_archive=str(archive))

    got, expected = _read_dataset(out), concepts.load_concepts()
    assert list(got["wnid"]) == list(expected["wnid"]) and list(got["label"]) == list(expected["label"])
    assert json.load(open(os.path.join(out, "_report.json")))["kept"] == 1000
    assert not [p for p in os.listdir(tmp_path) if "__tmp-" in p]
    # it ran as an application of this cluster, on its executors
    assert any(app["name"] == "curate concepts table" for app in standalone_cluster.status()["completedapps"])
    # each executor unpacked the archive into its working directory
    unpacked = [d for i in range(2) for d in glob.glob(os.path.join(standalone_cluster.worker_dir(i), "app-*", "*"))
                if os.path.exists(os.path.join(d, "environment", "bin", "python"))]
    assert unpacked, "no executor working directory holds ./environment"


# ---------------------------------------------------------------- the LAIONet pipeline
STAGES = {"label": ["laion_index", "wnid", "lemma"], "subset": ["laion_index"],
          "similarity": ["laion_index"], "filter": ["laion_index"]}
class Pipeline:
    """Sample LAION parts served by a local image server, a tiny CLIP, and the job files and
    options of label -> subset -> similarity -> filter (`laionet run`), download, arrange."""

    def __init__(self, root: str, laion: str, model, image_base_url: str):
        self.root, self.laion, self.model, self.image_base_url = root, laion, model, image_base_url

    def steps(self, work: str):
        stages, filtered = f"{work}/stages", f"{work}/stages/filter"
        return [
            ("jobs/laionet_run.py", ["--laion", self.laion, "--work-dir", stages, "--model", self.model[0],
                                     "--pretrained", self.model[1], "--threshold", "0.0", "--remove-nsfw",
                                     "--partitions", "3"]),
            ("jobs/laionet_download.py", ["--metadata", filtered, "--out", f"{work}/shards",
                                          "--number-sample-per-shard", "40", "--thread-count", "4",
                                          "--retries", "0", "--timeout", "0.5"]),
            ("jobs/laionet_arrange.py", ["--shards", f"{work}/shards", "--metadata", filtered,
                                         "--target", f"{work}/laionet", "--target-df", f"{work}/laionet.parquet"]),
        ]

    @staticmethod
    def read_stages(work: str) -> dict:
        found = {name: pd.read_parquet(f"{work}/stages/{name}").sort_values(keys).reset_index(drop=True)
                 for name, keys in STAGES.items()}
        found["frequency"] = open(f"{work}/stages/filter.class_frequency.txt").read()
        return found

    @classmethod
    def read(cls, work: str) -> dict:
        """Everything the pipeline produced, in a form that does not depend on partitioning."""
        found = cls.read_stages(work)
        report = json.load(open(f"{work}/shards.report.json"))
        found["download"] = {k: report[k] for k in ("read", "kept", "dropped")}
        (success,) = glob.glob(f"{work}/laionet_success*.parquet")
        found["success_name"] = os.path.basename(success)
        found["success"] = pd.read_parquet(success).sort_values("laion_index").reset_index(drop=True)
        tree = {}
        for folder, _, files in os.walk(f"{work}/laionet"):
            for name in files:
                path = os.path.join(folder, name)
                tree[os.path.relpath(path, f"{work}/laionet")] = open(path, "rb").read()
        found["tree"] = tree
        return found


def assert_same(got: dict, expected: dict) -> None:
    for key, value in expected.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got[key], value, check_exact=True, obj=key)
        else:
            assert got[key] == value, key


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Inputs, and the outputs of the whole pipeline run with the same job files on local[1]."""
    from curation.sample_images import SampleImageServer
    from jobs import sample_data
    from jobs.config import build_config
    from tiny_clip import write_tiny_clip

    root = str(tmp_path_factory.mktemp("pipeline"))
    with SampleImageServer(stall_seconds=1.0, huge_side=800) as server:
        laion = os.path.join(root, "laion")
        sample_data.run(None, build_config(sample_data.SampleLaionConfig, {
            "out": laion, "rows": 600, "parts": 3, "seed": 5, "image_base_url": server.base_url}))
        p = Pipeline(root, laion, write_tiny_clip(os.path.join(root, "tiny_clip")), server.base_url)
        local = os.path.join(root, "local1")
        for job_file, args in p.steps(local):
            proc = subprocess.run([sys.executable, job_file, *args, "--master", "local[1]"], cwd=REPO,
                                  capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, f"{job_file} on local[1]:\n{(proc.stdout + proc.stderr)[-4000:]}"
        p.expected = Pipeline.read(local)
        assert len(p.expected["filter"]) > 0 and len(p.expected["tree"]) > 0
        yield p


@on_cluster
def test_pipeline_on_the_cluster_matches_local1(standalone_cluster, pipeline, tmp_path):
    work = str(tmp_path / "cluster")
    for job_file, args in pipeline.steps(work):
        submit_wrapped(standalone_cluster, job_file, args)
    assert_same(Pipeline.read(work), pipeline.expected)


def _kill_a_worker_running_a_task(cluster: StandaloneCluster, ui_port: int, driver: subprocess.Popen,
                                  timeout: float = 300.0) -> int:
    """Once the job (not our executor check) has a task running on some executor, SIGKILL the
    worker that hosts that executor; returns the worker's number."""
    api = f"http://127.0.0.1:{ui_port}/api/v1/applications"
    deadline = time.time() + timeout
    while time.time() < deadline and driver.poll() is None:
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
    raise AssertionError("never saw a task of the job running on an executor")


@on_cluster
def test_worker_killed_mid_label_job_same_output(standalone_cluster, pipeline, tmp_path):
    out, log, ui_port = str(tmp_path / "label"), str(tmp_path / "driver.log"), free_port()
    driver = popen_wrapped(standalone_cluster, "jobs/laionet_label.py",
                           ["label", "--laion", pipeline.laion, "--out", out], log,
                           conf={"spark.ui.enabled": "true", "spark.ui.port": str(ui_port)})
    try:
        _kill_a_worker_running_a_task(standalone_cluster, ui_port, driver)
        assert driver.wait(timeout=600) == 0, open(log).read()[-4000:]
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, 9)
        standalone_cluster.restart_dead_workers()
    got = pd.read_parquet(out).sort_values(STAGES["label"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, pipeline.expected["label"], check_exact=True)
    assert "Lost executor" in open(log).read()


@on_cluster
def test_rerun_after_a_driver_crash_resumes_from_the_last_complete_stage(standalone_cluster, pipeline, tmp_path):
    work = str(tmp_path / "run")
    job_file, args = pipeline.steps(work)[0]
    label_report = f"{work}/stages/label/_report.json"
    driver = popen_wrapped(standalone_cluster, job_file, args, str(tmp_path / "crashed.log"))
    try:
        deadline = time.time() + 400
        while not os.path.exists(label_report) and driver.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert os.path.exists(label_report), open(tmp_path / "crashed.log").read()[-4000:]
    finally:
        os.killpg(driver.pid, 9)  # the driver dies: spark-submit, its JVM and the Python driver
        driver.wait(timeout=60)
    assert not os.path.exists(f"{work}/stages/filter/_report.json")
    # no partial output where a complete one is expected: a stage folder exists only complete
    for name in os.listdir(f"{work}/stages"):
        if "__tmp-" not in name and os.path.isdir(f"{work}/stages/{name}"):
            assert os.path.exists(f"{work}/stages/{name}/_report.json"), name
    label_written = os.path.getmtime(label_report)

    proc = submit_wrapped(standalone_cluster, job_file, args)
    assert "[label] skipped" in proc.stdout
    assert os.path.getmtime(label_report) == label_written
    got = Pipeline.read_stages(work)
    assert_same(got, {k: pipeline.expected[k] for k in got})
