"""notebooks/explore_laionet.ipynb runs top to bottom (nbclient) on the output of `curate demo`."""
from __future__ import annotations

import os
import re

import pytest
from tests.support import REPO

NOTEBOOK = os.path.join(REPO, "notebooks", "explore_laionet.ipynb")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_output(spark, tmp_path_factory):
    """A small `curate demo` run (all six stages, images from its own sample-image server on
    a free port) with the tiny random-weight CLIP of the tests instead of the demo's MiniLM,
    run in this process on the suite's Spark session (the demo uses an active session: no
    second JVM, no second round of imports). 300 rows are enough for every part of the
    notebook (a few dozen classes, downloaded images). The tiny CLIP's cosines lie around
    0.87-0.99, so the threshold 0.95 puts captions on both sides of it (the histogram, the
    near-threshold tables)."""
    from jobs.demo import JOB
    from jobs.framework.base import execute
    from tests.support.standalone import free_port
    from tests.support.tiny_clip import write_tiny_clip

    root = tmp_path_factory.mktemp("demo")
    model, checkpoint = write_tiny_clip(str(root / "tiny_clip"))
    out = str(root / "demo-output")
    assert execute(JOB, ["--out", out, "--rows", "300", "--parts", "2", "--encoder", "open_clip", "--model", model,
                         "--pretrained", checkpoint, "--threshold", "0.95", "--image-port", str(free_port())]) == 0
    return out


def _outputs(nb, kind: str):
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
            if o.get("output_type") == kind]


def test_notebook_runs_on_the_demo_output(demo_output, monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    from tests.support.standalone import fast_jvm_env

    monkeypatch.setenv("LAIONET_DEMO_DIR", demo_output)  # the kernel inherits the environment
    # ... and so does the notebook's Spark JVM (short-lived: C1 only, serial GC; see standalone.py)
    monkeypatch.setenv("JDK_JAVA_OPTIONS", fast_jvm_env()["JDK_JAVA_OPTIONS"])
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # any error in a cell raises CellExecutionError naming the cell
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}}).execute()

    assert not _outputs(nb, "error")
    text = "".join(o.get("text", "") for o in _outputs(nb, "stream"))
    assert demo_output in text
    assert "LAIONet rows; threshold" in text
    assert "classes have LAIONet rows" in text
    above = re.search(r"([0-9.]+)% of scored captions lie above the threshold", text)
    assert above and 0 < float(above.group(1)) < 100, "the threshold should split the scores"
    # the demo ran download and arrange: the success metadata section found its file
    assert "_success" in text and "LAIONet rows have an image" in text
    # the bar chart, the histogram and the long-tail plot were drawn
    images = [o for o in _outputs(nb, "display_data") if "image/png" in o.get("data", {})]
    assert len(images) >= 3
    # the Spark cell's table of per-class counts (the pandas/Spark agreement is asserted inside)
    tables = [o for o in _outputs(nb, "execute_result") if "text/html" in o.get("data", {})]
    assert any("count" in t["data"]["text/html"] for t in tables)
    # captions on both sides of the threshold for the largest classes (one table per class)
    near = [o for o in _outputs(nb, "display_data") if "text/html" in o.get("data", {})
            and "side" in o["data"]["text/html"]]
    assert near and any("<td>kept</td>" in t["data"]["text/html"] and "<td>dropped</td>" in t["data"]["text/html"]
                        for t in near)


def test_notebook_is_stored_without_outputs():
    """Outputs belong to a run, not to the repository (and would go stale)."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
