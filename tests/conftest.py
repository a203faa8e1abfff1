"""Shared fixtures: one local[2] SparkSession for the whole run, WordNet location, paths."""
from __future__ import annotations

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.abspath(os.path.join(REPO, "..", "shared"))
REFERENCE = os.path.join(SHARED, "reference")

# WordNet 3.0 for nltk (see DEVELOPERS.md); tests that need it use the `wordnet` fixture
os.environ.setdefault("NLTK_DATA", os.path.join(SHARED, "nltk_data"))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "cluster: starts separate Spark processes (local-cluster or standalone)")
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped without one)")


@pytest.fixture(scope="session")
def reference_dir():
    if not os.path.isdir(REFERENCE):
        pytest.skip(f"reference data not found at {REFERENCE}")
    return REFERENCE


@pytest.fixture(scope="session")
def spark():
    from jobs.framework.session import create_session

    session = create_session("local[2]", app_name="longtail-curation-tests",
                             conf={"spark.sql.shuffle.partitions": "4",
                                   "spark.default.parallelism": "2"})
    yield session
    session.stop()


@pytest.fixture
def curate_cmd():
    """The `curate` console script of this interpreter's environment (an unactivated venv)."""
    exe = os.path.join(os.path.dirname(sys.executable), "curate")
    if not os.path.exists(exe):
        return [sys.executable, "-m", "jobs.framework.cli"]
    return [exe]


def _app(master: str, tmp_path_factory):
    from tests.support.spark_app import SparkApp

    name = master.replace("[", "_").replace("]", "").replace(",", "_")
    root = tmp_path_factory.mktemp(f"app-{name}")
    os.makedirs(root / "cwd")
    return SparkApp(master, str(root / "app.log"), cwd=str(root / "cwd"))


@pytest.fixture(scope="session")
def cluster_app(tmp_path_factory):
    """One `local-cluster[2,1,1024]` application (separate executor processes) for every test
    that needs one: `cluster_app.curate(job words..., args...)` (tests/spark_app.py)."""
    app = _app("local-cluster[2,1,1024]", tmp_path_factory)
    yield app
    app.stop()


@pytest.fixture(scope="session")
def local1_app(tmp_path_factory):
    """One `local[1]` application (one core, one partition by default) for the tests that
    compare against the suite's local[2]."""
    app = _app("local[1]", tmp_path_factory)
    yield app
    app.stop()

# fixtures used by tests of more than one layer: session-scoped, registered here once
from tests.support.download import server  # noqa: E402,F401
from tests.support.laionet_label import label_run, lemma_map_file, parts  # noqa: E402,F401
from tests.support.laionet_run import first_run, sample_laion, tiny_model  # noqa: E402,F401
from tests.support.original_sampling import laionet_meta  # noqa: E402,F401
from tests.support.similarity import tiny_clip  # noqa: E402,F401
from tests.support.t2t import t2t_inputs  # noqa: E402,F401
