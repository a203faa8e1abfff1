"""The report page of a work dir: numbers, comparisons, plots and HTML (pure: no I/O, no Spark).

`jobs/report.py` gathers what the stages wrote (`_report.json`, `_config.yaml`, frequency
files, parquet) into plain dicts; this module computes the head/tail numbers and the
comparison with the study, draws the plots (PNG bytes) and renders one self-contained
HTML page (images embedded as data: URIs, no scripts, no network) and a few lines of text.

The study's class-frequency files (the `_ori` files of the original project's
`metadata/freqs/`, counts per class in label order) ship in `curation/data/study_freqs/`.
"""
from __future__ import annotations

import base64
import html
import io
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

STUDY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "study_freqs")
#: the head is the most frequent 10% of classes
HEAD_FRAC = 0.1


# ---------------------------------------------------------------- numbers
def class_stats(counts: Sequence[int]) -> Dict[str, Any]:
    """The numbers users quote about a class distribution."""
    c = np.asarray(counts, dtype=np.int64)
    ordered = np.sort(c)[::-1]
    total = int(c.sum())
    n_head = max(1, round(len(c) * HEAD_FRAC)) if len(c) else 0
    return {"total": total, "classes": int(len(c)), "nonempty": int((c > 0).sum()),
            "empty": int((c == 0).sum()), "lt10": int((c < 10).sum()), "lt100": int((c < 100).sum()),
            "max": int(ordered[0]) if len(c) else 0, "median": float(np.median(c)) if len(c) else 0.0,
            "top10_share": float(ordered[:n_head].sum() / total) if total else 0.0}


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    """Spearman rank correlation (ties averaged); None when either side is constant."""
    ra, rb = _ranks(np.asarray(a, dtype=np.float64)), _ranks(np.asarray(b, dtype=np.float64))
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def compare_counts(ours: Sequence[int], theirs: Sequence[int], classnames: Sequence[str]) -> Dict[str, Any]:
    """Spearman of class counts, and the classes empty on one side only (names, label order)."""
    o, t = np.asarray(ours), np.asarray(theirs)
    return {"spearman": spearman(o, t), "total_ours": int(o.sum()), "total_theirs": int(t.sum()),
            "empty_here_only": [classnames[i] for i in np.flatnonzero((o == 0) & (t > 0))],
            "empty_there_only": [classnames[i] for i in np.flatnonzero((o > 0) & (t == 0))]}


def top_bottom(counts: Sequence[int], classnames: Sequence[str], k: int = 5
               ) -> Tuple[List[Tuple[str, int]], List[Tuple[str, int]]]:
    """The k most and the k least frequent non-empty classes (ties: label order)."""
    items = [(classnames[i], int(c)) for i, c in enumerate(counts) if c > 0]
    ordered = sorted(items, key=lambda nc: -nc[1])
    return ordered[:k], sorted(items, key=lambda nc: nc[1])[:k]


def row_overlap(ours: Mapping[int, str], theirs: Mapping[int, str], top: int = 20) -> Dict[str, Any]:
    """Overlap of `laion_index` sets (overall and per class): {laion_index: wnid} on each side."""
    common = set(ours) & set(theirs)
    per: Dict[str, List[int]] = {}
    for side, rows in ((0, ours), (1, theirs)):
        for _, wnid in rows.items():
            per.setdefault(wnid, [0, 0, 0])[side] += 1
    for idx in common:
        if ours[idx] == theirs[idx]:
            per[ours[idx]][2] += 1
    same_class = sum(1 for i in common if ours[i] == theirs[i])
    classes = sorted(per.items(), key=lambda kv: (-(kv[1][0] + kv[1][1]), kv[0]))
    return {"ours": len(ours), "theirs": len(theirs), "common": len(common), "common_same_class": same_class,
            "jaccard": len(common) / len(set(ours) | set(theirs)) if (ours or theirs) else 0.0,
            "per_class": [{"wnid": w, "ours": v[0], "theirs": v[1], "common": v[2]} for w, v in classes[:top]],
            "classes": len(per)}


# ---------------------------------------------------------------- the study's files
def study_files() -> List[str]:
    return sorted(f for f in os.listdir(STUDY_DIR) if f.endswith("_ori.txt")) if os.path.isdir(STUDY_DIR) else []


def _num(x: Any) -> str:
    """0.7 -> '0.7', 0.5 -> '0.5', 448896 -> '448896' (the study's file-name spelling)."""
    return f"{float(x):g}" if isinstance(x, float) else str(x)


def study_name_for(recipe: str, params: Mapping[str, Any]) -> str:
    """The study's file name for a recipe of ours (it may not exist: the study has no file).

    - `laionet` (filter at `threshold`): `class_frequency_laionet_thresh<t>_ori.txt`;
    - `laionet-subset` (`threshold`, optional `frac` / `n`): `..._thresh<t>_frac<f>` / `_n<n>`;
    - `match-freq`: `class_frequency_laionet_match_incap_ori.txt`;
    - anything else whose file already follows the study's naming (cls, incaps): `params['name']`.
    """
    if recipe == "laionet":
        return f"class_frequency_laionet_thresh{_num(params['threshold'])}_ori.txt"
    if recipe == "laionet-subset":
        tail = f"_frac{_num(params['frac'])}" if params.get("frac") else \
            f"_n{params['n']}" if params.get("n") else ""
        return f"class_frequency_laionet_thresh{_num(params['threshold'])}{tail}_ori.txt"
    if recipe == "match-freq":
        return "class_frequency_laionet_match_incap_ori.txt"
    return str(params.get("name", ""))


def study_path(name: str) -> Optional[str]:
    path = os.path.join(STUDY_DIR, os.path.basename(name))
    return path if name and os.path.isfile(path) else None


# ---------------------------------------------------------------- plots
def histogram_png(counts: Sequence[int], edges: Sequence[float], threshold: Optional[float], title: str) -> bytes:
    """Bars of a histogram (counts per [edge_i, edge_i+1)) with the threshold as a line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    edges = np.asarray(edges, dtype=np.float64)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#4c72b0")
    if threshold is not None:
        ax.axvline(threshold, color="#c44e52", linewidth=1.5, label=f"threshold {threshold:g}")
        ax.legend(fontsize=8)
    ax.set_xlabel("caption-to-synset similarity")
    ax.set_ylabel("captions")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


# ---------------------------------------------------------------- rendering
_CSS = """body{font-family:sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}td.l,th.l{text-align:left}
.note{color:#555}.warn{color:#a33}img{max-width:100%}"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _n(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else _e(x)


def _img(png: bytes, cls: str, alt: str) -> str:
    return (f'<img class="{cls}" alt="{_e(alt)}" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1, cls: str = "") -> str:
    def cell(tag: str, i: int, v: Any) -> str:
        return f'<{tag}{" class=l" if i < left else ""}>{_n(v)}</{tag}>'
    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f'<table{f" class={cls}" if cls else ""}><tr>{head}</tr>{body}</table>'


def _pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.1%}"


def _stats_rows(stats: Mapping[str, Any]) -> List[Tuple[str, Any]]:
    return [("images", stats["total"]), ("classes", stats["classes"]), ("non-empty classes", stats["nonempty"]),
            ("classes with 0 images", stats["empty"]), ("classes with < 10", stats["lt10"]),
            ("classes with < 100", stats["lt100"]), ("largest class", stats["max"]),
            ("share of the top 10% of classes", _pct(stats["top10_share"]))]


def render_html(page: Mapping[str, Any]) -> str:
    """The page: `page` as built by `jobs.report.build_page` (plain dicts, PNG bytes)."""
    out = [f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{_e(page['title'])}</title>"
           f"<style>{_CSS}</style></head><body><h1>{_e(page['title'])}</h1>",
           f"<p class=note>work dir <code>{_e(page['workdir'])}</code>; built from the files the stages "
           f"wrote ({len(page['stages'])} stage report(s), {len(page['frequencies'])} frequency file(s)).</p>"]
    if page["skipped"]:
        out.append("<h2>Skipped</h2><ul class=skipped>" + "".join(
            f"<li class=warn><code>{_e(p)}</code>: {_e(why)}</li>" for p, why in page["skipped"]) + "</ul>")
    out.append("<h2>Funnel</h2>")
    rows = [(s["name"], s["read"], s["kept"],
             ", ".join(f"{k} {v:,}" for k, v in sorted(s["dropped"].items())) or "-",
             "-" if s.get("seconds") is None else f"{s['seconds']:.1f}", s["path"]) for s in page["stages"]]
    out.append(_table(["stage", "read", "kept", "dropped (reason n)", "seconds", "output"], rows, cls="funnel")
               if rows else "<p>no stage report</p>")
    for f in page["frequencies"]:
        out.append(f"<h2>Class frequency: <code>{_e(f['name'])}</code></h2>")
        if f.get("note"):
            out.append(f"<p class=note>{_e(f['note'])}</p>")
        out.append(_img(f["png"], "longtail", f"long-tail curve of {f['name']}"))
        stats = f["stats"]
        cmp_ = f.get("comparison")
        header = ["", "ours"] + (["study" if f.get("study_label") is None else f["study_label"]] if cmp_ else [])
        srows = []
        for (label, value), other in zip(_stats_rows(stats),
                                         _stats_rows(f["other_stats"]) if cmp_ else [(None, None)] * 8):
            srows.append((label, value) + ((other[1],) if cmp_ else ()))
        out.append(_table(header, srows, cls="stats"))
        if f.get("compare_note"):
            out.append(f"<p class=note>{_e(f['compare_note'])}</p>")
        if cmp_:
            rho = cmp_["spearman"]
            out.append(f"<p>Spearman correlation of class counts: <b class=spearman>"
                       f"{'-' if rho is None else f'{rho:.4f}'}</b>; "
                       f"{len(cmp_['empty_here_only'])} class(es) empty here but not in {_e(f['other_name'])}"
                       f"{': ' + _e(', '.join(cmp_['empty_here_only'][:20])) if cmp_['empty_here_only'] else ''}"
                       f"{' ...' if len(cmp_['empty_here_only']) > 20 else ''}; "
                       f"{len(cmp_['empty_there_only'])} the other way round"
                       f"{': ' + _e(', '.join(cmp_['empty_there_only'][:20])) if cmp_['empty_there_only'] else ''}"
                       f"{' ...' if len(cmp_['empty_there_only']) > 20 else ''}.</p>")
        top, bottom = f["top"], f["bottom"]
        out.append("<p>Top 5: " + _e(", ".join(f"{n} {c:,}" for n, c in top)) +
                   "<br>Bottom 5 (non-empty): " + _e(", ".join(f"{n} {c:,}" for n, c in bottom)) + "</p>")
    ov = page.get("overlap")
    if ov:
        out.append(f"<h2>Rows shared with <code>{_e(ov['path'])}</code></h2>"
                   f"<p>ours {ov['ours']:,}, theirs {ov['theirs']:,}, common laion_index "
                   f"<b class=common>{ov['common']:,}</b> ({ov['common_same_class']:,} with the same wnid), "
                   f"Jaccard {ov['jaccard']:.3f}.</p>")
        out.append(_table(["wnid", "ours", "theirs", "common (same wnid)"],
                          [(r["wnid"], r["ours"], r["theirs"], r["common"]) for r in ov["per_class"]], cls="overlap"))
    sim = page.get("similarity")
    if sim:
        out.append(f"<h2>Similarity: <code>{_e(sim['column'])}</code></h2>")
        out.append(_img(sim["png"], "histogram", "similarity histogram"))
        out.append(f"<p>{sim['n']:,} scored captions; threshold {sim['threshold']}; "
                   f"{sim['above']:,} above it.</p>")
        for cls_ in sim["examples"]:
            rows = [(f"{s:.4f}", side, t) for s, side, t in cls_["rows"]]
            out.append(f"<h3>{_e(cls_['wnid'])} {_e(cls_['classname'])}</h3>" +
                       _table(["similarity", "", "caption"], rows, left=0))
    out.append("</body></html>\n")
    return "\n".join(out)


def summary_lines(page: Mapping[str, Any], out_path: str) -> List[str]:
    """A few lines for the terminal."""
    lines = []
    if page["stages"]:
        lines.append("funnel: " + " -> ".join(f"{s['name']} {s['kept']:,}" for s in page["stages"]))
    for f in page["frequencies"]:
        s = f["stats"]
        line = (f"{f['name']}: {s['total']:,} images, {s['nonempty']}/{s['classes']} classes non-empty, "
                f"<10: {s['lt10']}, <100: {s['lt100']}, top 10% share {s['top10_share']:.1%}")
        cmp_ = f.get("comparison")
        if cmp_:
            rho = cmp_["spearman"]
            line += f"; vs {f['other_name']}: Spearman {'-' if rho is None else f'{rho:.3f}'}"
        elif f.get("compare_note"):
            line += f"; {f['compare_note']}"
        lines.append(line)
    if page.get("overlap"):
        ov = page["overlap"]
        lines.append(f"rows shared with {ov['path']}: {ov['common']:,} of ours {ov['ours']:,} / theirs {ov['theirs']:,}")
    for p, why in page["skipped"]:
        lines.append(f"skipped {p}: {why}")
    lines.append(f"report page: {out_path}")
    return lines
