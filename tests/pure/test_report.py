"""`curate report`: the page of a LAIONet run and of a `cls` output (HTML that parses, one
long-tail image per frequency file, numbers equal to the files the stages wrote), the
comparison with the study or another file, bad work dirs; and the live progress line
(on a pseudo-terminal, not on a pipe)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def test_study_files_for_recipes_and_spearman_with_ties():
    from curation import report_page as RP

    assert RP.study_path(RP.study_name_for("laionet", {"threshold": 0.7})).endswith("laionet_thresh0.7_ori.txt")
    assert RP.study_path(RP.study_name_for("laionet", {"threshold": 0.82})) is not None
    assert RP.study_path(RP.study_name_for("laionet-subset", {"threshold": 0.7, "frac": 0.125})) is not None
    assert RP.study_path(RP.study_name_for("match-freq", {})) is not None
    assert RP.study_path(RP.study_name_for("laionet", {"threshold": 0.5})) is None
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 300), rng.integers(0, 7, 300)
    assert RP.spearman(a, b) == pytest.approx(pd.Series(a).corr(pd.Series(b), method="spearman"), abs=1e-12)
    assert RP.spearman([1, 1, 1], [1, 2, 3]) is None
