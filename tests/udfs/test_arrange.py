"""`curate laionet arrange`: rules on plain Python, the job on the local[2] session."""
from __future__ import annotations

import io
import os
import tarfile

from curation.samples.images import generate_image
from tests.support.arrange import sample
from udfs.arrange import STAGING, TreeWriter, clean_staging, tar_samples

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def test_writers_rename_beside_the_final_file_and_leave_nothing(tmp_path):
    a, b = TreeWriter(str(tmp_path)), TreeWriter(str(tmp_path))
    assert sorted(os.listdir(tmp_path / STAGING)) == sorted([a.tag, b.tag])  # one marker each
    assert a.write("n00000001/7.jpg", b"one") == "written"
    assert b.write("n00000001/7.jpg", b"two") == "present"
    (tmp_path / "n00000001" / "8.jpg").write_bytes(b"")  # what a machine crash may leave
    assert b.write("n00000001/8.jpg", b"eight") == "written"
    a.close(), b.close()
    assert os.listdir(tmp_path / STAGING) == [] and sorted(os.listdir(tmp_path / "n00000001")) == ["7.jpg", "8.jpg"]
    assert [(tmp_path / "n00000001" / f).read_bytes() for f in ("7.jpg", "8.jpg")] == [b"one", b"eight"]
    assert clean_staging(str(tmp_path)) == 0 and not (tmp_path / STAGING).exists()


def test_tar_samples_stop_at_a_truncated_member_and_say_so():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for i in range(3):
            sample(tf, f"k{i}", i, generate_image(f"k{i}", "png"))
    data = buf.getvalue()
    whole = list(tar_samples(io.BytesIO(data), len(data)))
    assert [k for k, _ in whole] == ["sample"] * 3 and sorted(whole[2][1][1]) == ["jpg", "json", "txt"]
    cut = data[:data.index(b"k2.jpg") + 512 + 40]  # 40 bytes into the third image
    got = list(tar_samples(io.BytesIO(cut), len(cut)))
    assert [k for k, _ in got] == ["sample", "sample", "corrupt_tar"]
    assert [item[0] for _, item in got[:2]] == ["k0", "k1"]
