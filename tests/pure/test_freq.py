"""Frequency files and long-tail plots: `curate freq`, `curate freq plot`,
`write_frequency_and_plot`."""


import pytest

from curation.plots import DPI, FIGSIZE, head_tail_shares, long_tail_png
from tests.support.freq import _png_size


def test_head_tail_shares():
    counts = [100] + [10] * 9 + [0] * 10          # 20 classes, 190 examples
    head, tail = head_tail_shares(counts)
    assert head == pytest.approx(110 / 190)       # top 10% = 2 classes
    assert tail == pytest.approx(0.0)             # bottom 50% = 10 empty classes
    assert head_tail_shares([0, 0]) == (0.0, 0.0) and head_tail_shares([]) == (0.0, 0.0)


def test_plot_is_a_valid_png_of_the_expected_size():
    data = long_tail_png({"a": [5, 100, 0, 7], "b": [0, 0, 0, 0]}, title="t")
    assert _png_size(data) == ("PNG", (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI)))
