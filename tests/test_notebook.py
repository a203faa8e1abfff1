"""notebooks/explore_laionet.ipynb runs top to bottom (nbclient) on the output of `curate demo`."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "notebooks", "explore_laionet.ipynb")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory):
    """A small `curate demo` run (sample data, label -> filter on local[*]) with the tiny
    random-weight CLIP of the tests instead of the demo's MiniLM, which scores a few hundred
    captions in minutes on a busy 2-core machine; the outputs have the same layout."""
    from tiny_clip import write_tiny_clip

    root = tmp_path_factory.mktemp("demo")
    model, checkpoint = write_tiny_clip(str(root / "tiny_clip"))
    out = str(root / "demo-output")
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "demo", "--out", out, "--rows", "1500", "--parts", "2",
                           "--encoder", "open_clip", "--model", model, "--pretrained", checkpoint,
                           "--threshold", "0.2"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return out


def _outputs(nb, kind: str):
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
            if o.get("output_type") == kind]


def test_notebook_runs_on_the_demo_output(demo_output, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LAIONET_DEMO_DIR", demo_output)  # the kernel inherits the environment
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # any error in a cell raises CellExecutionError naming the cell
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(NOTEBOOK)}}).execute()

    assert not _outputs(nb, "error")
    text = "".join(o.get("text", "") for o in _outputs(nb, "stream"))
    assert demo_output in text
    assert "LAIONet rows; threshold" in text
    # the bar chart, the histogram and the long-tail plot were drawn
    images = [o for o in _outputs(nb, "display_data") if "image/png" in o.get("data", {})]
    assert len(images) >= 3
    # the Spark cell's table of per-class counts (the pandas/Spark agreement is asserted inside)
    tables = [o for o in _outputs(nb, "execute_result") if "text/html" in o.get("data", {})]
    assert any("count" in t["data"]["text/html"] for t in tables)


def test_notebook_is_stored_without_outputs():
    """Outputs belong to a run, not to the repository (and would go stale)."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
