"""Long-tail plots of class-frequency files: classes sorted by count, log scale.

Rendering returns PNG bytes (no file I/O here), so jobs can write them anywhere their
file system reaches. Matplotlib is imported inside the functions, with the Agg canvas
and no pyplot state, so importing this module stays cheap and rendering is headless.
"""
from __future__ import annotations

import io
from typing import Mapping, Sequence, Tuple

#: figure size in inches and resolution: the PNG is 800 x 500 pixels
FIGSIZE = (8.0, 5.0)
DPI = 100
#: the head is the most frequent 10% of classes, the tail the least frequent 50%
HEAD_FRAC = 0.1
TAIL_FRAC = 0.5


def head_tail_shares(counts: Sequence[int], head_frac: float = HEAD_FRAC,
                     tail_frac: float = TAIL_FRAC) -> Tuple[float, float]:
    """(share of examples in the top `head_frac` of classes, share in the bottom `tail_frac`).

    Class counts round up to at least one class in each part; an empty corpus gives (0, 0).
    """
    ordered = sorted((int(c) for c in counts), reverse=True)
    total = sum(ordered)
    if not ordered or total == 0:
        return 0.0, 0.0
    n_head = max(1, round(len(ordered) * head_frac))
    n_tail = max(1, round(len(ordered) * tail_frac))
    return sum(ordered[:n_head]) / total, sum(ordered[-n_tail:]) / total


def long_tail_png(curves: Mapping[str, Sequence[int]], title: str = "") -> bytes:
    """Render one or several long-tail curves ({legend name: per-class counts}) to PNG.

    Each curve is its classes sorted by count (rank 1 = most frequent) on a log y axis;
    classes with no example cannot sit on a log axis and are reported in the legend
    instead, together with the head and tail shares and the total.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name, counts in curves.items():
        ordered = sorted((int(c) for c in counts), reverse=True)
        head, tail = head_tail_shares(ordered)
        positive = [c for c in ordered if c > 0]
        label = (f"{name}: {sum(ordered):,} examples, top {HEAD_FRAC:.0%} classes {head:.1%}, "
                 f"bottom {TAIL_FRAC:.0%} {tail:.1%}, {len(ordered) - len(positive)} empty")
        ax.plot(range(1, len(positive) + 1), positive, label=label, linewidth=1.5)
    n_classes = max((len(c) for c in curves.values()), default=0)
    if n_classes:
        # where the head ends and the tail starts, as ranks (shares are in the legend)
        head_end = max(1, round(n_classes * HEAD_FRAC)) + 0.5
        tail_start = n_classes - max(1, round(n_classes * TAIL_FRAC)) + 0.5
        for x, text in ((head_end, f"top {HEAD_FRAC:.0%}"), (tail_start, f"bottom {TAIL_FRAC:.0%}")):
            ax.axvline(x, color="gray", linestyle=":", linewidth=1)
            ax.text(x, 0.02, f" {text}", transform=ax.get_xaxis_transform(), fontsize=7, color="gray")
    if any(int(c) > 0 for counts in curves.values() for c in counts):
        ax.set_yscale("log")  # (a log axis of no positive value cannot be drawn)
    ax.set_xlabel("class rank (sorted by count)")
    ax.set_ylabel("examples per class")
    ax.set_title(title or "class frequency")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()
