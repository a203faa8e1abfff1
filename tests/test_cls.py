"""`curate cls` against the original approach (pandas `str.contains` per class) on generated
captions, plus the whole-word/case/multi-label rules and bad inputs."""
import json
import warnings

import pandas as pd
import pytest

from curation.errors import ConfigError, InputError
from curation.wordmatch import original_pattern

EDGE_CAPTIONS = [
    ("edge/0.jpg", "A GOLDFISH and a Tench, swimming"),      # two classes, any case
    ("edge/1.jpg", "goldfishes swimming"),                   # not a whole word
    ("edge/2.jpg", "tabs\tand\r\nnewlines around a goldfish"),
    ("edge/3.jpg", "an R.V. parked"),                        # '\b' after '.' needs a word char
    ("edge/4.jpg", "RxVs are campers"),                      # '.' as any char: compat only
    ("edge/5.jpg", None),
    ("edge/6.jpg", "   "),
    ("edge\t7.jpg", "a goldfish"),                           # a path that would break the TSV
    (None, "a goldfish"),
    ("edge/8.jpg", '"Goldfish" in a bowl, said "Tom" '),     # quotes and a trailing space: kept
    ("edge/9.jpg", "  a tench's \\ tail"),                   # leading spaces, ', \\
]


def _corpus(n=300, seed=2):
    from jobs.sample_captions import generate_captions

    rows = [dict(filepath=f, caption=c) for f, c in EDGE_CAPTIONS]
    return pd.DataFrame(rows + list(generate_captions(n, seed)))


def _expected(corpus, escape=True, single_label=False):
    """The original recipe: one case-insensitive regex pass per class."""
    from jobs.classes import lemmas_by_label

    valid = corpus[corpus.filepath.notna() & ~corpus.filepath.fillna("").str.contains("[\t\r\n]")]
    captions = valid.caption
    hits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for label, lemmas in lemmas_by_label().items():
            mask = captions.str.contains(original_pattern(lemmas, escape=escape), case=False, regex=True, na=False)
            hits[label] = valid[mask.to_numpy()]
    rows = pd.concat([h.assign(label=label) for label, h in hits.items() if len(h)])
    if single_label:
        per_caption = rows.groupby("filepath").label.transform("size")
        rows = rows[per_caption == 1]
    rows = rows.assign(caption=rows.caption.str.replace(r"[\r\n\t]", " ", regex=True))
    return rows.sort_values(["label", "filepath", "caption"])[["filepath", "caption", "label"]].reset_index(drop=True)


def _cfg(**kw):
    from jobs.cls import ClsConfig
    from jobs.framework.config import build_config

    return build_config(ClsConfig, kw)


def _read_tsv(path):
    """As open_clip's loader reads it (quotes parsed), without turning 'NA' into NaN."""
    return pd.read_csv(path, sep="\t", keep_default_na=False, dtype={"label": int})


def test_cls_matches_the_original_approach_and_counts_per_class(spark, tmp_path):
    from curation.concepts import classnames
    from curation.frequency import read_frequency_file
    from jobs.cls import run_cls

    corpus = _corpus()
    with open(tmp_path / "yfcc.jsonl", "w") as fh:
        for row in corpus.to_dict("records"):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    report = run_cls(spark, _cfg(captions=str(tmp_path / "yfcc.jsonl"), out=str(tmp_path / "o" / "yfcc_cls.tsv")))

    got = _read_tsv(tmp_path / "o" / "yfcc_cls.tsv")
    expected = _expected(corpus)
    assert list(got.columns) == ["filepath", "caption", "label"]
    pd.testing.assert_frame_equal(got, expected)
    # the rules, on the hand-written captions
    edge = got[got.filepath.str.startswith("edge/")]
    assert sorted(edge[edge.filepath == "edge/0.jpg"].label) == [0, 1]      # multi-label: 2 rows
    assert "edge/1.jpg" not in set(edge.filepath) and "edge/4.jpg" not in set(edge.filepath)
    assert edge[edge.filepath == "edge/2.jpg"].caption.item() == "tabs and  newlines around a goldfish"
    assert edge[edge.filepath == "edge/8.jpg"].caption.item() == '"Goldfish" in a bowl, said "Tom" '
    # the file is pandas' to_csv of the rows, byte for byte (what the original wrote)
    written = (tmp_path / "o" / "yfcc_cls.tsv").read_bytes()
    assert written == expected.to_csv(sep="\t", index=False).encode("utf-8")
    # the same corpus as a TSV written by pandas (quoted fields) is read as pandas reads it
    corpus.to_csv(tmp_path / "yfcc.tsv", sep="\t", index=False)
    run_cls(spark, _cfg(captions=str(tmp_path / "yfcc.tsv"), out=str(tmp_path / "t" / "yfcc_cls.tsv")))
    assert (tmp_path / "t" / "yfcc_cls.tsv").read_bytes() == written
    # the frequency file counts rows per class (the original wrote per-row labels)
    freq = read_frequency_file(str(tmp_path / "o" / "class_frequency_yfcc_cls_imagenet_ori.txt"), 1000)
    assert [name for name, _ in freq] == classnames()
    assert {i: c for i, (_, c) in enumerate(freq) if c} == expected.label.value_counts().to_dict()
    assert (tmp_path / "o" / "class_frequency_yfcc_cls_imagenet_ori.png").exists()
    # the report balances captions; output rows are in info
    saved = json.loads((tmp_path / "o" / "yfcc_cls.tsv.report.json").read_text())
    assert saved["read"] == len(corpus) == saved["kept"] + sum(saved["dropped"].values())
    assert saved["dropped"]["bad_filepath"] == 2 and saved["dropped"]["no_caption"] >= 2
    assert saved["kept"] == expected.filepath.nunique() == report.kept
    assert saved["info"]["output_rows"] == len(expected)


def test_single_label_compat_parquet_with_other_column_names(spark, tmp_path):
    from jobs.cls import run_cls

    corpus = _corpus(200, seed=5)
    corpus.rename(columns={"filepath": "key", "caption": "text"}).to_parquet(tmp_path / "cc12m.parquet")
    run_cls(spark, _cfg(captions=str(tmp_path / "cc12m.parquet"), out=str(tmp_path / "cc12m_cls.tsv"),
                        filepath_col="key", caption_col="text", single_label=True, compat_unescaped=True))
    got = _read_tsv(tmp_path / "cc12m_cls.tsv")
    pd.testing.assert_frame_equal(got, _expected(corpus, escape=False, single_label=True))
    assert "edge/0.jpg" not in set(got.filepath)          # two classes: dropped by --single-label
    assert "edge/4.jpg" in set(got.filepath)              # 'R.V.' as a regex matches "RxVs"
    saved = json.loads((tmp_path / "cc12m_cls.tsv.report.json").read_text())
    assert saved["dropped"]["multi_label"] >= 1 and saved["info"]["output_rows"] == len(got) == saved["kept"]


def test_bad_inputs_fail_before_any_work(spark, tmp_path):
    from jobs.cls import run_cls

    (tmp_path / "c.tsv").write_text("filepath\ttext\na.jpg\ta goldfish\n")
    with pytest.raises(InputError, match=r"c\.tsv \(tsv\) has no column 'caption'; its columns: filepath, text$"):
        run_cls(spark, _cfg(captions=str(tmp_path / "c.tsv"), out=str(tmp_path / "o.tsv")))
    (tmp_path / "m.tsv").write_text("filepath\tcaption\na.jpg\ta goldfish\nb.jpg\ta\ttench\n")
    with pytest.raises(InputError, match=r"m\.tsv: the row 'b\.jpg\\ta\\ttench' does not have the 2 "
                                         r"tab-separated fields of the header \(filepath, caption\)"):
        run_cls(spark, _cfg(captions=str(tmp_path / "m.tsv"), out=str(tmp_path / "o.tsv")))
    (tmp_path / "c.jsonl").write_text('{"path": "a.jpg", "caption": "x"}\n')
    with pytest.raises(InputError, match="no column 'filepath'"):
        run_cls(spark, _cfg(captions=str(tmp_path / "c.jsonl"), out=str(tmp_path / "o.tsv")))
    (tmp_path / "c.txt").write_text("x")
    with pytest.raises(ConfigError, match="cannot tell the format"):
        run_cls(spark, _cfg(captions=str(tmp_path / "c.txt"), out=str(tmp_path / "o.tsv")))
    with pytest.raises(InputError, match="not found"):
        run_cls(spark, _cfg(captions=str(tmp_path / "none.jsonl"), out=str(tmp_path / "o.tsv")))
    assert not (tmp_path / "o.tsv").exists()
    with pytest.raises(ConfigError, match="'out'"):
        _cfg(captions="x.jsonl", out="o.csv")


def test_presets_parse():
    import glob
    import os

    from jobs.cls import ClsConfig
    from jobs.framework.config import build_config, load_yaml

    presets = glob.glob(os.path.join(os.path.dirname(__file__), "..", "conf", "cls", "*.yaml"))
    assert len(presets) >= 2
    for path in presets:
        cfg = build_config(ClsConfig, load_yaml(path), source=path)
        assert cfg.out.endswith("_cls.tsv") and cfg.freq_out.endswith("_cls_imagenet_ori.txt")


def test_sample_captions_job(tmp_path):
    from jobs.framework.base import execute
    from jobs.sample_captions import JOB

    for name in ("a.jsonl", "b.jsonl"):
        assert execute(JOB, ["--rows", "500", "--seed", "3", "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()   # same seed, same rows
    rows = pd.read_json(tmp_path / "a.jsonl", lines=True)
    assert list(rows.columns) == ["filepath", "caption"] and len(rows) == 500 and rows.filepath.is_unique
    captions = rows.caption.dropna()
    assert captions.str.contains("[\t\n]").any() and (captions == "").any() and rows.caption.isna().any()
    assert captions.str.contains("[А-я]|[一-龥]").any()            # not only English
    assert execute(JOB, ["--rows", "0", "--out", str(tmp_path / "c.jsonl")]) == 2
    assert execute(JOB, ["--rows", "5", "--out", str(tmp_path / "c.csv")]) == 2


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
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "driver_jvm_max_mib 1024" in proc.stdout
    report = json.loads((tmp_path / "out" / "big_cls.tsv.report.json").read_text())
    assert report["kept"] == captions and report["info"]["output_rows"] == n
    with open(out, "rb") as fh:
        assert fh.readline() == b"filepath\tcaption\tlabel\n"
        lines = sum(1 for _ in fh)
    assert lines == n
