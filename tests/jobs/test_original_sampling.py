"""`--sampling original`: our outputs against the original scripts' generator calls on the
same input, written here as plain Python/pandas following `create_incaps_caption_variants.py`,
`create_incaps_subsets.py` and `create_laionet_subsets.py` (clip-beyond-tail `data_utils/`),
on the tests' local[2] Spark session with inputs split over several tasks (the captions job is one pass of
the driver's Python, with or without the session)."""
from __future__ import annotations

import glob

import json

import os

import random

from contextlib import contextmanager

import numpy as np

import pandas as pd

import pytest

from curation import concepts

from curation.errors import ConfigError

from curation.samples.incaps import entries_json, generate_entries

from jobs import incaps

from jobs import laionet_subsets as ls

from jobs.framework.config import build_config, load_yaml

from tests.support import CONF



def read_out(path):
    return pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)


@contextmanager
def small_file_splits(spark, size):
    """Spark splits input files into `size` pieces (several tasks for a small file)."""
    key = "spark.sql.files.maxPartitionBytes"
    old = spark.conf.get(key)
    spark.conf.set(key, size)
    try:
        yield
    finally:
        spark.conf.set(key, old)


# ---------------------------------------------------------------- ImageNet-Captions captions
def _original_captions(json_path, imagenet_root, use_title=False, use_tags=False, use_description=False,
                       append_cname=False, use_synset=False, shuffle=False, mode="cname", seed=0):
    """(filepath, label, caption) rows as create_incaps_caption_variants.py builds them; its
    openai80 templates (a tuple, on which it fails) taken as the list it means to draw from."""
    from nltk.corpus import wordnet as wn
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    wnids = concepts.wnids()
    wnid2classname = dict(zip(wnids, concepts.classnames()))
    wnin2lab = {w: i for i, w in enumerate(wnids)}
    wnid2synset = {w: [lemma.name().replace("_", " ") for lemma in wn.synset_from_pos_and_offset("n", int(w[1:])).lemmas()]
                   for w in wnids}
    template = {"cname": "{}", "a+cname": "a {}", "photo": "a photo of a {}"}.get(mode)
    if mode == "openai80":
        template = [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]
    random.seed(seed)
    with open(json_path, encoding="utf-8") as fh:
        metadata = json.load(fh)
    if shuffle:
        random.seed(seed)
        random.shuffle(metadata)

    def join(d):
        out = ""
        t = random.choice(template) if isinstance(template, list) else template
        if use_title and d["title"] != "":
            out += d["title"]
        if use_tags and len(d["tags"]) > 0:
            out += (" " if out else "") + " ".join(d["tags"])
        if use_description and d["description"] != "":
            out += (" " if out else "") + d["description"]
        out = out.replace("\n", " ").replace("\r", " ").replace("\t", " ")
        if append_cname:
            cname = random.choice(wnid2synset[d["wnid"]]) if use_synset else wnid2classname[d["wnid"]]
            out = t.format(cname) + " " + out
        return out

    kept = [d for d in metadata if d["wnid"] in wnids]
    captions = [join(d) for d in kept]
    return [(os.path.join(imagenet_root, "train", d["wnid"], d["filename"]), wnin2lab[d["wnid"]], c)
            for d, c in zip(kept, captions) if c.replace(" ", "") != ""]


@pytest.fixture(scope="module")
def caption_root(tmp_path_factory):
    wnids = concepts.wnids()[:15]
    entries = generate_entries(wnids, 30, seed=3, classnames=dict(zip(concepts.wnids(), concepts.classnames())))
    # entries of a wnid outside the 1000 classes: shuffled with the rest, never drawn for
    for i in (3, 40, 41, len(entries) - 5):
        entries.insert(i, {"filename": f"n99999999_{i}.JPEG", "wnid": "n99999999", "title": "odd",
                           "description": "", "tags": []})
    root = tmp_path_factory.mktemp("orig_incaps")
    os.makedirs(root / "imagenet-captions")
    (root / "imagenet-captions" / "imagenet_captions.json").write_text(entries_json(entries), encoding="utf-8")
    return str(root)


VARIANTS = [
    dict(use_title=True, use_tags=True, use_description=True, append_cname=True, shuffle=True),
    dict(append_cname=True, use_synset=True, mode="a+cname", shuffle=True),
    dict(append_cname=True, use_synset=True, mode="openai80", shuffle=True),
    dict(use_title=True, append_cname=True, use_synset=True, mode="photo"),
    dict(use_title=True, shuffle=True),
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(k for k, x in v.items() if x is True)
                         + f"-{v.get('mode', 'cname')}")
def test_captions_follow_the_original_random_stream(spark, caption_root, tmp_path, variant):
    cfg = dict(root=caption_root, out=str(tmp_path / "a"), sampling="original", skip_bad_rows=True, **variant)
    out = incaps.run_captions(spark, build_config(incaps.CaptionsConfig, cfg))
    expected = _original_captions(os.path.join(caption_root, "imagenet-captions", "imagenet_captions.json"),
                                  os.path.join(caption_root, "imagenet"), **variant)
    df = read_out(out["tsv"])
    assert list(df.filepath) == [p for p, _, _ in expected]
    assert list(df.label.astype(int)) == [lab for _, lab, _ in expected]
    assert list(df.caption) == [c for _, _, c in expected]
    report = json.loads(open(out["tsv"] + ".report.json").read())
    assert report["info"]["sampling"] == "original" and report["dropped"]["unknown_wnid"] == 4
    if variant.get("mode") != "openai80":
        return
    # the same bytes without Spark (what the command does on local paths)
    no_spark = incaps.run_captions(None, build_config(incaps.CaptionsConfig, {**cfg, "out": str(tmp_path / "b")}))
    with open(out["tsv"], "rb") as a, open(no_spark["tsv"], "rb") as b:
        assert a.read() == b.read()


def test_caption_seed_changes_the_original_stream(spark, caption_root, tmp_path):
    variant = VARIANTS[1]
    out = incaps.run_captions(spark, build_config(incaps.CaptionsConfig, dict(
        root=caption_root, out=str(tmp_path), sampling="original", skip_bad_rows=True, seed=5, **variant)))
    expected = _original_captions(os.path.join(caption_root, "imagenet-captions", "imagenet_captions.json"),
                                  os.path.join(caption_root, "imagenet"), seed=5, **variant)
    df = read_out(out["tsv"])
    assert list(zip(df.filepath, df.caption)) == [(p, c) for p, _, c in expected]
    assert expected != _original_captions(
        os.path.join(caption_root, "imagenet-captions", "imagenet_captions.json"),
        os.path.join(caption_root, "imagenet"), **variant)


# ---------------------------------------------------------------- ImageNet-Captions subsets
@pytest.fixture(scope="module")
def incaps_tsv(tmp_path_factory):
    """A 1000-class captions TSV, rows not in filepath order."""
    rng = np.random.default_rng(0)
    n = 2500
    labels = rng.integers(0, 1000, n)
    wnids = concepts.wnids()
    numbers = rng.permutation(n) + 10
    df = pd.DataFrame({"filepath": [f"/d/imagenet/train/{wnids[lab]}/{wnids[lab]}_{k}.JPEG"
                                    for lab, k in zip(labels, numbers)],
                       "label": labels, "caption": [f"caption number {k} of a thing" for k in numbers]})
    path = tmp_path_factory.mktemp("orig_subsets") / "incaps_title_tags_description+cname_2500.tsv"
    df.to_csv(path, sep="\t", index=False)
    return str(path)


def _original_subset(path, k=None, n=None, seed=42):
    """The rows create_incaps_subsets.py writes, in its order."""
    df = pd.read_csv(path, sep="\t", keep_default_na=False, dtype={"caption": str})
    if k is not None:
        np.random.seed(seed)
        cls_idxs = sorted(np.random.choice(1000, k, replace=False).tolist())
        df = df[df["label"].isin(cls_idxs)].copy()
        df["label_ori"] = df["label"]
        df["label"] = df["label_ori"].map({c: i for i, c in enumerate(cls_idxs)})
    if n is not None:
        df = df.sort_values(by="filepath")
        df = df.sample(n=n, random_state=seed)
    return df.astype(str).reset_index(drop=True)


@pytest.mark.parametrize("k, n, seed", [(None, 300, 42), (300, None, 42), (600, 150, 7)])
def test_incaps_subsets_follow_numpy_and_pandas(spark, incaps_tsv, tmp_path, k, n, seed):
    cfg = build_config(incaps.SubsetsConfig, dict(df=incaps_tsv, out=str(tmp_path), k=k, n=n, seed=seed,
                                                  sampling="original"))
    with small_file_splits(spark, "48k"):
        assert spark.read.text(incaps_tsv).rdd.getNumPartitions() > 2
        out = incaps.run_subsets(spark, cfg)
    expected = _original_subset(incaps_tsv, k, n, seed)
    got = read_out(out["tsv"])
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected)
    if k is None or n is None:
        return
    with small_file_splits(spark, "1m"):  # one task: the same bytes
        again = incaps.run_subsets(spark, build_config(incaps.SubsetsConfig, {
            **{f: getattr(cfg, f) for f in ("df", "k", "n", "seed", "sampling")}, "out": str(tmp_path / "one")}))
    with open(out["tsv"], "rb") as a, open(again["tsv"], "rb") as b:
        assert a.read() == b.read()


def _original_laionet(df, thresh, frac=1.0, n=None, seed=42):
    """(laion_index, label) rows create_laionet_subsets.py writes, in its order."""
    wnids = concepts.wnids()
    wnid_to_label = {w: i for i, w in enumerate(wnids)}
    df = df.set_index("laion_index")
    one_per_cls = df.groupby("wnid").head(1)
    df = df[df["text_to_name_def_wnid_similarity"] >= thresh]
    if n is not None:
        df = df.sample(n=n, random_state=seed)
    else:
        df = df.sample(frac=frac, random_state=seed)
    wnids_to_take = set(wnids) - set(df["wnid"])
    df = pd.concat([df, one_per_cls[one_per_cls["wnid"].isin(wnids_to_take)]])
    if n is not None and len(df) > n:
        top_wnids = df["wnid"].value_counts().index.tolist()[:10]
        df = df.drop(df[df["wnid"].isin(top_wnids)].sample(n=len(df) - n, random_state=seed).index)
    df = df.sort_index()
    return list(zip(df.index, (wnid_to_label[w] for w in df["wnid"])))


@pytest.mark.parametrize("thresh, frac, n", [(0.7, 0.25, None), (0.8, 1.0, None), (0.85, 1.0, 200),
                                             (0.7, 1.0, 1000)])
def test_laionet_subsets_follow_pandas_sample_in_file_order(spark, laionet_meta, tmp_path, thresh, frac, n):
    folder, df = laionet_meta
    cfg = build_config(ls.SubsetsConfig, dict(df=folder, out_dir=str(tmp_path), thresh=thresh, frac=frac, n=n,
                                              seed=42, images_root="/img", sampling="original"))
    with small_file_splits(spark, "8k"):
        assert spark.read.parquet(folder).rdd.getNumPartitions() > 2
        report = ls.run_subsets(spark, cfg)
    expected = _original_laionet(df, thresh, frac, n)
    tsv = glob.glob(str(tmp_path / "laionet_thresh*.tsv"))[0]
    got = read_out(tsv)
    ids = got.filepath.str.extract(r"/(\d+)\.jpg$")[0].astype(int)
    assert list(zip(ids, got.label.astype(int))) == expected
    assert report.kept == len(expected) and report.info["sampling"] == "original"
    assert report.read == report.kept + sum(report.dropped.values())
    if n is not None:
        assert len(expected) == n
    if thresh == 0.85:  # classes emptied by the threshold come back, the excess is trimmed
        assert report.dropped["trimmed_top_classes"] == report.info["restored_classes"] > 0


# ---------------------------------------------------------------- config and presets
@pytest.mark.parametrize("cls, base", [(incaps.CaptionsConfig, {"root": "r", "append_cname": True}),
                                       (incaps.SubsetsConfig, {"df": "x.tsv", "n": 3}),
                                       (ls.SubsetsConfig, {"df": "m", "out_dir": "o"})])
def test_sampling_values(cls, base):
    assert build_config(cls, base).sampling == "keyed"
    with pytest.raises(ConfigError, match=r"'sampling'.*'hashed'.*allowed values: keyed, original"):
        build_config(cls, {**base, "sampling": "hashed"})


def test_study_presets_use_the_original_generators():
    presets = {p: load_yaml(p) for p in glob.glob(os.path.join(CONF, "laionet", "subsets-*.yaml"))
               + glob.glob(os.path.join(CONF, "incaps", "*.yaml"))}
    assert len(presets) >= 15
    for path, values in presets.items():
        if os.path.basename(path) == "tail5ceil1.yaml":
            assert "sampling" not in values, path   # trim-tail: the original is unseeded
        else:
            assert values.get("sampling") == "original", path

