"""`curate laionet match-freq`: LAIONet with the class frequencies of ImageNet-Captions.

Per class the target is its number of ImageNet-Captions images; up to the target comes
from LAIONet (a seeded sample, `curation.t2t.match_frequencies`), the rest from the
text-to-text retrieved set (`laionet-t2t`), and classes that stay short are reported.
Outputs, in `--out-dir`: `laionet_match_incaps_<N>.tsv` (`filepath<TAB>label<TAB>caption`,
file paths under the root of the source each image came from) and its parquet twin (plus
`wnid`, `laion_index`, `from`); in `--freq-dir`: `class_frequency_laionet_match_incaps_ori.txt`
and a long-tail plot of the achieved counts against the targets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from curation.errors import InputError
from curation.report import StageReport
from jobs.framework.base import Job, main_for
from jobs.framework.config import check_roots, opt

FREQ_NAME = "class_frequency_laionet_match_incaps_ori.txt"


@dataclass
class MatchFreqConfig:
    #: paths this job reads and writes (outputs are checked against inputs; jobs/framework/config.py)
    PATHS = {"df": "input", "t2t_df": "input", "captions_df": "input", "out_dir": "output_dir", "freq_dir": "output_dir"}
    df: str = opt(None, "LAIONet success metadata (laion_index, wnid, TEXT), e.g. "
                        "laionet_thresh07_success<N>.parquet", required=True)
    t2t_df: str = opt(None, "retrieved (t2t) success metadata (laion_index, wnid, TEXT)", required=True)
    captions_df: str = opt(None, "ImageNet-Captions: the json, or a parquet with a filename (or ic_index) "
                                 "or wnid column", required=True)
    seed: int = opt(42, "sampling seed (the sample depends only on laion_index and the seed)")
    laionet_root: str = opt("../datasets/laionet", "image root of LAIONet rows in the TSV file paths")
    t2t_root: str = opt("../datasets/laionet-t2t", "image root of retrieved rows in the TSV file paths")
    out_dir: str = opt("../datasets/imagenet-captions", "directory of the TSV and its parquet twin")
    freq_dir: Optional[str] = opt(None, "directory of the class-frequency file and plot (default: out-dir)")

    def validate(self) -> None:
        check_roots(self, "laionet_root", "t2t_root")


def incaps_targets(spark, path: str) -> Dict[str, int]:
    """Images per wnid in ImageNet-Captions (one per unique filename)."""
    from curation.concepts import wnids
    from curation.t2t import class_targets, wnid_of_filename
    from jobs.laionet_t2t import load_queries
    from jobs.io.output import require_input

    require_input(spark, path, "ImageNet-Captions")
    if path.endswith(".json"):
        return class_targets(load_queries(spark, path)[1]["wnid"], wnids())
    df = spark.read.parquet(path)
    name_col = next((c for c in ("filename", "ic_index") if c in df.columns), None)
    if name_col:
        names = df.select(name_col).distinct().toPandas()[name_col]
        return class_targets([wnid_of_filename(str(n), f"{path} column {name_col}") for n in names], wnids())
    if "wnid" in df.columns:
        return class_targets(df.select("wnid").toPandas()["wnid"], wnids())
    raise InputError(f"{path}: no filename, ic_index or wnid column; its columns: {', '.join(df.columns)}")


def read_metadata(spark, path: str, what: str):
    """laion_index (a column or a published file's pandas index), wnid (standard wnids), TEXT
    of a success metadata parquet."""
    from pyspark.sql import functions as F

    from curation.concepts import WNID_ALIASES
    from jobs.io.metadata import read_metadata as read_laionet_metadata

    df = read_laionet_metadata(spark, path, what)
    missing = [c for c in ("laion_index", "wnid", "TEXT") if c not in df.columns]
    if missing:
        raise InputError(f"{what} {path} has no column {', '.join(map(repr, missing))}; "
                         f"its columns: {', '.join(df.columns)}")
    wnid = F.col("wnid")
    for alias, standard in WNID_ALIASES.items():
        wnid = F.when(F.col("wnid") == alias, F.lit(standard)).otherwise(wnid)
    return df.select(F.col("laion_index").cast("long"), wnid.alias("wnid"), "TEXT")


def run(spark, cfg: MatchFreqConfig) -> StageReport:
    from pyspark.sql import functions as F

    from curation.concepts import classnames, wnid_to_label, wnids
    from curation.frequency import frequency_text
    from curation.plots import long_tail_png
    from curation.t2t import match_frequencies, shortfall_lines
    from jobs.io import output
    from jobs.io.tables import plot_path_for

    targets = incaps_targets(spark, cfg.captions_df)
    laionet = read_metadata(spark, cfg.df, "LAIONet success metadata")
    t2t = read_metadata(spark, cfg.t2t_df, "t2t success metadata")
    sel = match_frequencies(laionet.select("laion_index", "wnid").toPandas(),
                            t2t.select("laion_index", "wnid").toPandas(), targets, cfg.seed)

    chosen = spark.createDataFrame(sel.rows[["laion_index", "from"]], "laion_index long, from string")
    roots = {"laionet": cfg.laionet_root.rstrip("/"), "laionet-t2t": cfg.t2t_root.rstrip("/")}
    labels = wnid_to_label()
    rows = (laionet.withColumn("from", F.lit("laionet"))
            .unionByName(t2t.withColumn("from", F.lit("laionet-t2t")))
            .join(chosen, ["laion_index", "from"])
            .select(F.concat_ws("/", F.create_map(*[F.lit(x) for kv in roots.items() for x in kv])[F.col("from")],
                                "wnid", F.concat(F.col("laion_index").cast("string"), F.lit(".jpg")))
                    .alias("filepath"),
                    F.create_map(*[F.lit(x) for kv in sorted(labels.items()) for x in kv])[F.col("wnid")]
                    .alias("label"),
                    F.translate(F.coalesce("TEXT", F.lit("")), "\r\n\t", "   ").alias("caption"),
                    "wnid", "laion_index", "from"))

    n = len(sel.rows)
    name = f"laionet_match_incaps_{n}"
    out_dir = cfg.out_dir.rstrip("/")
    tsv_path, parquet_path = f"{out_dir}/{name}.tsv", f"{out_dir}/{name}.parquet"
    freq_path = f"{(cfg.freq_dir or cfg.out_dir).rstrip('/')}/{FREQ_NAME}"

    table = sel.table
    report = StageReport("laionet match-freq", read=sel.read, kept=n, dropped=sel.dropped)
    short = table[table["shortfall"] > 0]
    report.info.update({
        "out": tsv_path, "parquet": parquet_path, "freq_file": freq_path, "plot": plot_path_for(freq_path),
        "target_total": int(table["target"].sum()), "achieved_total": n,
        "from_laionet": int(table["from_laionet"].sum()), "from_t2t": int(table["from_t2t"].sum()),
        "classes_reaching_target": int((table["shortfall"] == 0).sum()),
        "classes_short": int(len(short)), "shortfall_total": int(short["shortfall"].sum()),
        "shortfalls": {w: {"achieved": int(a), "target": int(t)}
                       for w, a, t in zip(short["wnid"], short["achieved"], short["target"])},
    })

    with output.atomic_dir(spark, parquet_path, cfg, report) as tmp:
        rows.write.parquet(tmp)
        written = spark.read.parquet(tmp).count()
        if written != n:
            raise AssertionError(f"wrote {written} rows for {n} selected")
    output.write_single_csv(spark, rows.select("filepath", "label", "caption", "laion_index", "from"),
                            tsv_path, order_by=["laion_index", "from"], order_only=["laion_index", "from"])
    output.finish_file(spark, tsv_path, cfg, report)

    by_label = table.assign(label=table["wnid"].map(labels))
    achieved = dict(zip(by_label["label"], by_label["achieved"]))
    output.write_text(spark, freq_path, frequency_text(achieved, classnames()))
    target_curve = [targets.get(w, 0) for w in wnids()]
    achieved_curve = [achieved.get(i, 0) for i in range(len(target_curve))]
    output.write_bytes(spark, plot_path_for(freq_path),
                       long_tail_png({"ImageNet-Captions (target)": target_curve, name: achieved_curve},
                                     title="LAIONet matched to ImageNet-Captions frequencies"))
    output.finish_file(spark, freq_path, cfg, report)

    print(report.summary())
    for line in shortfall_lines(table, dict(zip(wnids(), classnames()))):
        print(f"  short: {line}")
    return report


JOB = Job(("laionet", "match-freq"), MatchFreqConfig, run,
          help="LAIONet + retrieved rows sampled to the class frequencies of ImageNet-Captions (TSV)")

if __name__ == "__main__":
    main_for(JOB)
