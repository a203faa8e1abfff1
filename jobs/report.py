"""`curate report WORKDIR [--out FILE.html] [--compare study|FREQFILE] [--compare-rows PARQUET]`.

One self-contained HTML page (plots embedded, no network) about a work dir of `laionet run`,
`incaps`, `cls`, `match-freq`, ... or a single stage output, built only from what the
stages wrote: every `_report.json` / `<output>.report.json` (+ config) under WORKDIR gives
a funnel row; every class-frequency file (`*class_frequency*.txt`, or named by a report)
gives a long-tail curve with its head/tail numbers; with `--compare study` the study's
file for the same recipe (packaged `_ori` files) is drawn beside it with the Spearman
correlation and the classes empty on one side only. For LAIONet the similarity histogram
with the threshold and captions next to it, and with `--compare-rows` the overlap of
`laion_index` with published metadata. A few lines go to the terminal.

Local (or mounted) work dirs only: the page is read with pyarrow, without Spark. An
unreadable report is skipped with one line naming it, and the page lists it.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import yaml

from curation import report_page as RP
from curation.errors import ConfigError, InputError
from jobs.framework.base import Job, main_for
from jobs.framework.config import opt

#: report `info` keys that name a class-frequency file
FREQ_KEYS = ("frequency", "frequency_file", "freq_file")
#: captions shown on each side of the threshold, for this many of the largest classes
EXAMPLES, EXAMPLE_CLASSES = 2, 3


@dataclass
class ReportConfig:
    workdir: str = opt(None, "work dir (or one output file / folder) to report on", required=True, flag="workdir")
    out: Optional[str] = opt(None, "HTML file [default: <workdir>/report.html, or <file>.report.html]")
    compare: Optional[str] = opt(None, "'study' (the study's frequency file for the same recipe) or a "
                                       "class-frequency file to draw beside ours")
    compare_rows: Optional[str] = opt(None, "parquet with laion_index and wnid (e.g. the authors' published "
                                            "LAIONet metadata): overlap of rows per class")

    def validate(self) -> None:
        if not os.path.exists(self.workdir):
            raise ConfigError("workdir", f"{self.workdir} does not exist (a local or mounted path)")
        if self.compare and self.compare != "study" and not os.path.isfile(self.compare):
            raise ConfigError("compare", f"'study' or a class-frequency file; {self.compare} is not a file")
        if self.compare_rows and not os.path.exists(self.compare_rows):
            raise ConfigError("compare_rows", f"{self.compare_rows} does not exist")

    def out_path(self) -> str:
        if self.out:
            return self.out
        root = self.workdir.rstrip("/")
        return os.path.join(root, "report.html") if os.path.isdir(root) else root + ".report.html"


# ---------------------------------------------------------------- reading what stages wrote
def _stage(report_path: str, output: str, config_path: str) -> Dict[str, Any]:
    """A funnel row from a report file; InputError naming the file when unreadable."""
    try:
        with open(report_path, encoding="utf-8") as fh:
            rep = json.load(fh)
        if not isinstance(rep, dict):
            raise ValueError("not a JSON object")
        row = {"name": str(rep.get("stage", os.path.basename(output))), "path": output,
               "read": int(rep["read"]), "kept": int(rep["kept"]),
               "dropped": {str(k): int(v) for k, v in (rep.get("dropped") or {}).items()},
               "seconds": rep.get("seconds"), "info": rep.get("info") or {}, "report": report_path,
               "mtime": os.path.getmtime(report_path)}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{report_path}: unreadable stage report ({type(e).__name__}: {e})") from None
    config = None
    if os.path.isfile(config_path):
        try:
            with open(config_path, encoding="utf-8") as fh:
                config = yaml.safe_load(fh)
        except (OSError, yaml.YAMLError):
            config = None
    row["config"] = config if isinstance(config, dict) else {}
    return row


def discover(root: str) -> Tuple[List[Dict[str, Any]], List[Tuple[str, str]], List[str]]:
    """(stages in the order they finished, [(path, why skipped)], frequency files) under root."""
    stages: List[Dict[str, Any]] = []
    skipped: List[Tuple[str, str]] = []
    freqs: List[str] = []
    candidates: List[Tuple[str, str, str]] = []  # (report, output, config)

    def from_file(path: str) -> None:
        name = os.path.basename(path)
        if name.endswith(".report.json"):
            out = path[:-len(".report.json")]
            candidates.append((path, out, out + ".config.yaml"))
        elif name.endswith(".txt") and "class_frequency" in name:
            freqs.append(path)

    root = root.rstrip("/") or "/"
    if os.path.isfile(root):
        from_file(root)
        for side in (root + ".report.json",):
            if os.path.isfile(side):
                from_file(side)
    else:
        for dirpath, dirnames, filenames in os.walk(root):
            names = set(filenames)
            if "_report.json" in names:
                candidates.append((os.path.join(dirpath, "_report.json"), dirpath,
                                   os.path.join(dirpath, "_config.yaml")))
                dirnames[:] = []  # a dataset: its files are data
                continue
            # outputs that own a folder (img2dataset's, the arranged tree) have sidecars beside them
            owned = {f[:-len(".report.json")] for f in filenames if f.endswith(".report.json")}
            dirnames[:] = sorted(d for d in dirnames
                                 if ".__tmp-" not in d and not d.startswith(".") and d not in owned)
            for f in sorted(filenames):
                if ".__tmp-" not in f:
                    from_file(os.path.join(dirpath, f))
    for report_path, out, config_path in candidates:
        try:
            stages.append(_stage(report_path, out, config_path))
        except InputError as e:
            skipped.append((report_path, str(e).split(": ", 1)[1]))
            print(f"warning: {e}", file=sys.stderr)
    stages.sort(key=lambda s: (s["mtime"], s["path"]))
    # a stage that also put its report beside a second output (the filter's frequency file)
    # is one funnel row
    seen_rows, unique_stages = set(), []
    for s in stages:
        key = (s["name"], s["read"], s["kept"], tuple(sorted(s["dropped"].items())))
        if key not in seen_rows:
            seen_rows.add(key)
            unique_stages.append(s)
    stages = unique_stages
    # frequency files the reports name (outside the walked folders too)
    for s in stages:
        for key in FREQ_KEYS:
            value = s["info"].get(key)
            if isinstance(value, str) and value.endswith(".txt") and os.path.isfile(value):
                freqs.append(value)
        if s["name"] == "freq" and str(s["info"].get("out", "")).endswith(".txt") and os.path.isfile(s["path"]):
            freqs.append(s["path"])
    seen, unique = set(), []
    for f in freqs:
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            unique.append(f)
    return stages, skipped, unique


def _producer(stages: List[Dict[str, Any]], freq: str) -> Optional[Dict[str, Any]]:
    real = os.path.realpath(freq)
    for s in stages:
        for key in FREQ_KEYS:
            value = s["info"].get(key)
            if isinstance(value, str) and os.path.realpath(value) == real:
                return s
    return None


def _named(stages: List[Dict[str, Any]], name: str) -> Optional[Dict[str, Any]]:
    found = [s for s in stages if s["name"] == name]
    return found[-1] if found else None


def _read_columns(path: str, columns: List[str], what: str):
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path) if os.path.isfile(path) else pq.ParquetDataset(path).schema
    except Exception as e:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise InputError(f"{path}: cannot read {what} as parquet ({str(e).splitlines()[0][:200]})") from None
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise InputError(f"{path}: {what} lacks column(s) {', '.join(missing)} (found: {', '.join(schema.names)})")
    return pq.read_table(path, columns=columns)


def _downloaded_counts(arrange: Dict[str, Any], labels: Dict[str, int], n: int) -> Optional[List[int]]:
    success = arrange["info"].get("output")
    if not success or not os.path.exists(success):
        return None
    wnids = _read_columns(success, ["wnid"], "arrange success metadata").column("wnid").to_pylist()
    counts = [0] * n
    for w in wnids:
        if w in labels:
            counts[labels[w]] += 1
    return counts


def _frequency_section(path: str, stages, cfg: ReportConfig, classnames, labels) -> Dict[str, Any]:
    from curation.frequency import counts_from_frequency_file
    from curation.plots import long_tail_png

    n = len(classnames)
    counts_map = counts_from_frequency_file(path, classnames)
    counts = [counts_map[i] for i in range(n)]
    name = os.path.basename(path)
    section: Dict[str, Any] = {"name": name, "path": path, "counts": counts, "stats": RP.class_stats(counts)}
    section["top"], section["bottom"] = RP.top_bottom(counts, classnames)
    producer = _producer(stages, path)
    curves = {f"ours: {name}": counts}
    other = None
    if cfg.compare == "study":
        recipe, params = "other", {"name": name}
        if producer and producer["name"] == "laionet filter" and "threshold" in producer["config"]:
            recipe, params = "laionet", {"threshold": producer["config"]["threshold"]}
        elif name == "class_frequency_laionet_match_incaps_ori.txt":
            recipe = "match-freq"
        study_name = RP.study_name_for(recipe, params)
        study = RP.study_path(study_name)
        if study is None:
            section["compare_note"] = (f"the study has no class-frequency file for this recipe "
                                       f"({study_name or name})")
        else:
            other = (f"study: {study_name}", study)
            if recipe == "laionet":
                arrange = _named(stages, "laionet arrange")
                downloaded = _downloaded_counts(arrange, labels, n) if arrange else None
                if downloaded is not None:
                    counts = downloaded
                    curves["ours: downloaded images (arrange success metadata)"] = counts
                    section["compare_note"] = (f"compared like with like: our {sum(counts):,} downloaded images "
                                               "(arrange success metadata) against the study's downloaded images")
                else:
                    section["compare_note"] = ("ours counts metadata rows before download (no arrange output "
                                               "here); the study's file counts downloaded images")
    elif cfg.compare:
        other = (os.path.basename(cfg.compare), cfg.compare)
    if other is not None:
        theirs_map = counts_from_frequency_file(other[1], classnames)
        theirs = [theirs_map[i] for i in range(n)]
        curves[other[0]] = theirs
        section.update({"comparison": RP.compare_counts(counts, theirs, classnames), "other_name": other[0],
                        "other_path": other[1], "other_stats": RP.class_stats(theirs),
                        "study_label": other[0].split(":")[0]})
    section["png"] = long_tail_png(curves, title=name)
    return section


def _similarity_section(stages, classnames, labels) -> Optional[Dict[str, Any]]:
    import numpy as np
    import pyarrow.dataset as ds

    sim = _named(stages, "laionet similarity")
    if sim is None or not os.path.isdir(sim["path"]):
        return None
    column = sim["info"].get("similarity_column")
    if not column:
        return None
    flt = _named(stages, "laionet filter")
    threshold = flt["config"].get("threshold") if flt else None
    inclusive = bool(flt["config"].get("inclusive")) if flt else False
    edges = np.linspace(-1.0, 1.0, 201)
    hist = np.zeros(len(edges) - 1, dtype=np.int64)
    dataset = ds.dataset(sim["path"], format="parquet")
    cols = [c for c in ("laion_index", "wnid", "TEXT", column) if c in dataset.schema.names]
    if column not in cols:
        raise InputError(f"{sim['path']}: similarity output lacks column {column}")
    per_wnid: Dict[str, int] = {}
    near = []
    n = above = 0
    import pandas as pd

    for batch in dataset.to_batches(columns=cols):
        df = batch.to_pandas()
        s = df[column].to_numpy(dtype=np.float64)
        hist += np.histogram(np.clip(s, -1.0, 1.0 - 1e-12), bins=edges)[0]
        n += len(s)
        if threshold is not None:
            keep = s >= threshold if inclusive else s > threshold
            above += int(keep.sum())
            df = df.assign(_above=keep, _dist=np.abs(s - threshold))
            # keep per (wnid, side) the rows nearest the threshold seen so far
            near.append(df.sort_values(["_dist", "laion_index"]).groupby(["wnid", "_above"]).head(EXAMPLES))
        for w, c in df["wnid"].value_counts().items():
            per_wnid[w] = per_wnid.get(w, 0) + int(c)
    examples = []
    if near:
        cand = pd.concat(near).sort_values(["_dist", "laion_index"])
        largest = sorted(per_wnid.items(), key=lambda kv: (-kv[1], kv[0]))[:EXAMPLE_CLASSES]
        for wnid, _ in largest:
            rows = cand[cand["wnid"] == wnid]
            picked = pd.concat([rows[rows["_above"]].head(EXAMPLES), rows[~rows["_above"]].head(EXAMPLES)])
            picked = picked.sort_values(column, ascending=False)
            examples.append({"wnid": wnid, "classname": classnames[labels[wnid]] if wnid in labels else "",
                             "rows": [(float(r[column]), "above" if r["_above"] else "below", r.get("TEXT", ""))
                                      for _, r in picked.iterrows()]})
    used = np.flatnonzero(hist)
    lo, hi = (used[0], used[-1] + 1) if len(used) else (0, len(hist))
    png = RP.histogram_png(hist[lo:hi], edges[lo:hi + 1], threshold, f"{column} ({n:,} captions)")
    return {"column": column, "threshold": threshold if threshold is not None else "-", "n": n, "above": above,
            "png": png, "examples": examples}


def _overlap_section(stages, path: str) -> Dict[str, Any]:
    theirs_t = _read_columns(path, ["laion_index", "wnid"], "--compare-rows metadata")
    arrange = _named(stages, "laionet arrange")
    flt = _named(stages, "laionet filter")
    source = arrange["info"].get("output") if arrange else (flt["path"] if flt else None)
    if not source or not os.path.exists(source):
        raise InputError(f"--compare-rows: {path} needs LAIONet rows of ours (a filter or arrange output) in the work dir")
    ours_t = _read_columns(source, ["laion_index", "wnid"], "our LAIONet metadata")
    ours = dict(zip(ours_t.column("laion_index").to_pylist(), ours_t.column("wnid").to_pylist()))
    theirs = dict(zip(theirs_t.column("laion_index").to_pylist(), theirs_t.column("wnid").to_pylist()))
    return {**RP.row_overlap(ours, theirs), "path": path, "ours_path": source}


def build_page(cfg: ReportConfig) -> Dict[str, Any]:
    from curation.concepts import classnames as load_classnames
    from curation.concepts import wnid_to_label

    root = cfg.workdir.rstrip("/") or "/"
    stages, skipped, freq_files = discover(root)
    if cfg.compare and cfg.compare != "study":
        from curation.frequency import counts_from_frequency_file
        counts_from_frequency_file(cfg.compare, load_classnames())  # a wrong file fails before any work
    if not stages and not freq_files:
        raise InputError(f"{root}: no stage outputs here (no _report.json, <output>.report.json or "
                         "class-frequency file)")
    names, labels = load_classnames(), wnid_to_label()
    frequencies = []
    for path in freq_files:
        try:
            frequencies.append(_frequency_section(path, stages, cfg, names, labels))
        except InputError as e:
            if cfg.compare and cfg.compare in str(e):
                raise
            skipped.append((path, str(e)))
            print(f"warning: {e}", file=sys.stderr)
    similarity = None
    try:
        similarity = _similarity_section(stages, names, labels)
    except InputError as e:
        skipped.append((_named(stages, "laionet similarity")["path"], str(e)))
        print(f"warning: {e}", file=sys.stderr)
    overlap = _overlap_section(stages, cfg.compare_rows) if cfg.compare_rows else None
    return {"title": f"curation report: {os.path.basename(os.path.abspath(root))}", "workdir": os.path.abspath(root),
            "stages": stages, "skipped": skipped, "frequencies": frequencies, "similarity": similarity,
            "overlap": overlap}


def write_report(cfg: ReportConfig) -> Tuple[Dict[str, Any], str]:
    """Build and write the page; returns (page, its path)."""
    from jobs.io.output import write_local_bytes

    page = build_page(cfg)
    out = cfg.out_path()
    write_local_bytes(out, RP.render_html(page).encode("utf-8"))
    return page, out


def run(_spark, cfg: ReportConfig) -> Dict[str, Any]:
    page, out = write_report(cfg)
    print("\n".join(RP.summary_lines(page, out)))
    return page


JOB = Job(command=("report",), config=ReportConfig, run=run, needs_spark=False,
          help="one HTML page (funnel, long-tail curves, the study's beside ours) about a work dir")

if __name__ == "__main__":
    main_for(JOB)
