"""`curate cls` against the original approach (pandas `str.contains` per class) on generated
captions, plus the whole-word/case/multi-label rules and bad inputs."""
import json

import warnings

import pandas as pd

import pytest

from curation.errors import ConfigError, InputError

from curation.wordmatch import original_pattern

from tests.support import CONF

from tests.support.cls import _cfg, _corpus


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

    presets = glob.glob(os.path.join(CONF, "cls", "*.yaml"))
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

