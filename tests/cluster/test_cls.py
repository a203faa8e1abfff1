"""`curate cls` against the original approach (pandas `str.contains` per class) on generated
captions, plus the whole-word/case/multi-label rules and bad inputs."""
import json

import pytest

from tests.support import REPO
from tests.support.cls import _cfg, _corpus


@pytest.mark.cluster
@pytest.mark.slow
def test_separate_executor_processes_give_the_same_bytes(spark, tmp_path, cluster_app):
    """The matcher is rebuilt inside executor Python workers from what the task ships."""
    from jobs.cls import run_cls

    _corpus(150, seed=9).to_parquet(tmp_path / "c.parquet")
    run_cls(spark, _cfg(captions=str(tmp_path / "c.parquet"), out=str(tmp_path / "a" / "x.tsv")))
    res = cluster_app.curate("cls", "--captions", str(tmp_path / "c.parquet"), "--out", str(tmp_path / "b" / "x.tsv"))
    assert res.returncode == 0, res.output
    for name in ("x.tsv", "class_frequency_x_imagenet_ori.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


#: the driver of `test_cls_of_5m_rows_with_a_small_driver`: a 1 GiB driver JVM, then this
#: Python process limited to 2 GiB of address space (set after the JVM started, which it
#: would otherwise inherit), then `curate cls` in the same process
_SMALL_DRIVER = """
import resource, sys
from jobs.framework.session import create_session
spark = create_session("local-cluster[2,1,1024]", conf={"spark.driver.memory": "1g",
                                                      "spark.sql.shuffle.partitions": "8"})
print("driver_jvm_max_mib", spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory() >> 20)
limit = 2 << 30
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from jobs.framework.base import execute
from jobs.cls import JOB
code = execute(JOB, sys.argv[1:])
print("driver_python_max_rss_mib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10)
spark.stop()
sys.exit(code)
"""


@pytest.mark.cluster
@pytest.mark.slow
def test_cls_of_5m_rows_with_a_small_driver(tmp_path):
    """A 5M-row Cls TSV is written with a 1 GiB driver JVM and a 2 GiB driver Python: no
    step holds the rows on the driver (docs/CONTRIBUTING.md, "What the driver holds")."""
    import os
    import subprocess
    import sys

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from curation.wordmatch import matcher_from_key, matcher_key
    from jobs.classes import lemmas_by_label

    # 500k captions "<10 lemmas> <i>" that each mention exactly 10 classes: 5M output rows
    # (the writer's work) for a tenth of the matching
    by_label = lemmas_by_label()
    matcher = matcher_from_key(matcher_key(by_label, False))
    names = [lemmas[0] for _, lemmas in sorted(by_label.items())]
    groups = [" ".join(names[i:i + 10]) for i in range(0, len(names) - 9, 10)]
    rows, _ = matcher.match_batch([f"{g} 7" for g in groups])
    groups = pa.array([g for g, k in zip(groups, np.bincount(rows, minlength=len(groups))) if k == 10])
    assert len(groups) > 20
    captions, per_caption, n_files = 500_000, 10, 4
    n = captions * per_caption
    os.makedirs(tmp_path / "corpus")
    for f in range(n_files):
        ids = np.arange(f * captions // n_files, (f + 1) * captions // n_files, dtype=np.int64)
        text_ids = pc.cast(pa.array(ids), pa.string())
        table = pa.table({"filepath": pc.binary_join_element_wise("img/", text_ids, ".jpg", ""),
                          "caption": pc.binary_join_element_wise(groups.take(pa.array(ids % len(groups))),
                                                                 text_ids, " ")})
        pq.write_table(table, tmp_path / "corpus" / f"part-{f}.parquet", row_group_size=50_000)
    out = tmp_path / "out" / "big_cls.tsv"
    proc = subprocess.run([sys.executable, "-c", _SMALL_DRIVER, "--captions", str(tmp_path / "corpus"),
                           "--out", str(out)], capture_output=True, text=True, timeout=1800,
                          cwd=REPO)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "driver_jvm_max_mib 1024" in proc.stdout
    report = json.loads((tmp_path / "out" / "big_cls.tsv.report.json").read_text())
    assert report["kept"] == captions and report["info"]["output_rows"] == n
    with open(out, "rb") as fh:
        assert fh.readline() == b"filepath\tcaption\tlabel\n"
        lines = sum(1 for _ in fh)
    assert lines == n
