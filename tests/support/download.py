"""Helpers and fixtures of the download tests shared by more than one layer."""
from __future__ import annotations

import pandas as pd
import pytest

from curation.samples.images import SampleImageServer, sample_url

#: (kind, ext, rows); img2dataset's reason for each failing kind
KINDS = [("img", "jpg", 14), ("img", "png", 4), ("img", "webp", 4), ("redirect", "jpg", 3),
         ("huge", "png", 1), ("404", "jpg", 3), ("timeout", "jpg", 2), ("text", "jpg", 2),
         ("noai", "jpg", 2)]


WNIDS = ["n01440764", "n02102040", "n03028079"]


def laion_metadata(base: str, path: str) -> pd.DataFrame:
    """A small LAIONet-like metadata file; laion_index is not the row position."""
    rows = []
    for kind, ext, n in KINDS:
        for _ in range(n):
            i = len(rows)
            rows.append(dict(URL=sample_url(base, kind, f"k{i}", ext), TEXT=f"caption {i}",
                             laion_index=300_000_000 + 7 * i + 3, wnid=WNIDS[i % 3], NSFW="UNLIKELY",
                             LICENSE="?", similarity=0.3, text_to_name_def_wnid_similarity=0.8,
                             kind=kind))
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)
    df.drop(columns=["kind"]).to_parquet(path, index=False)
    return df


@pytest.fixture(scope="session")
def server():
    with SampleImageServer(stall_seconds=1.5, huge_side=1200) as srv:
        yield srv
