"""Frequency files and long-tail plots: `curate freq`, `curate freq plot`,
`write_frequency_and_plot`."""

import json

import os

import pandas as pd

import pytest

from curation.errors import ConfigError, InputError


from tests.support.freq import _png_size


def test_write_frequency_and_plot_without_spark(tmp_path):
    from curation.concepts import classnames
    from curation.frequency import read_frequency_file
    from jobs.io.tables import write_frequency_and_plot

    freq, png = write_frequency_and_plot(None, {0: 3, 999: 1}, str(tmp_path / "f" / "class_frequency_x_ori.txt"), "x")
    assert png == str(tmp_path / "f" / "class_frequency_x_ori.png")
    rows = read_frequency_file(freq, expected_lines=1000)
    assert rows[0] == (classnames()[0], 3) and rows[999] == (classnames()[999], 1) and sum(c for _, c in rows) == 4
    assert _png_size((tmp_path / "f" / "class_frequency_x_ori.png").read_bytes())[0] == "PNG"


def test_freq_plot_of_several_files(tmp_path, reference_dir):
    from jobs.framework.base import execute
    from jobs.freq import JOBS

    plot = next(job for job in JOBS if job.command == ("freq", "plot"))
    freqs = [os.path.join(reference_dir, "freqs", f"class_frequency_{name}_ori.txt")
             for name in ("laionet_thresh0.7", "incaps_imagenet", "yfcc15m_cls_imagenet")]
    out = tmp_path / "tails.png"
    assert execute(plot, ["--freqs", ",".join(freqs), "--names", "LAIONet,IN-Caps,YFCC-Cls",
                          "--out", str(out), "--title", "long tails"]) == 0
    assert _png_size(out.read_bytes()) == ("PNG", (800, 500))
    # a frequency file with the wrong number of lines: one-line error, nothing written
    short = tmp_path / "short.txt"
    short.write_text("".join(open(freqs[0]).readlines()[:999]))
    with pytest.raises(InputError, match=r"short\.txt: expected 1000 lines \(one per class\), found 999"):
        plot.run(None, plot.config(freqs=[freqs[0], str(short)], out=str(tmp_path / "x.png")))
    assert not (tmp_path / "x.png").exists()
    assert execute(plot, ["--freqs", str(short), "--out", str(tmp_path / "x.png")]) == 2
    with pytest.raises(ConfigError, match="'names'"):
        plot.config(freqs=["a", "b"], names=["a"], out="x.png").validate()


def test_freq_of_outputs_by_label_and_by_wnids(spark, tmp_path):
    from curation.concepts import wnids
    from curation.frequency import read_frequency_file
    from jobs.framework.config import build_config
    from jobs.freq import FreqConfig, run_freq

    # a TSV output (label column): 3 x class 5, 1 x class 999, 1 row without label
    (tmp_path / "cls.tsv").write_text("filepath\tcaption\tlabel\n" + "a\tx\t5\n" * 3 + "b\ty\t999\nc\tz\t\n")
    report = run_freq(spark, build_config(FreqConfig, {"input": str(tmp_path / "cls.tsv"),
                                                      "out": str(tmp_path / "f1.txt")}))
    counts = [c for _, c in read_frequency_file(str(tmp_path / "f1.txt"), 1000)]
    assert counts[5] == 3 and counts[999] == 1 and sum(counts) == 4
    assert (report.read, report.kept, report.dropped) == (5, 4, {"no_class": 1})
    assert report.info["by"] == "label" and (tmp_path / "f1.png").exists()
    assert json.loads((tmp_path / "f1.txt.report.json").read_text())["info"]["plot"].endswith("f1.png")

    # a subset output (wnids arrays): a row counts once for each of its classes; husky alias
    w = wnids()
    pd.DataFrame({"laion_index": [1, 2, 3, 4],
                  "wnids": [[w[0], w[1]], [w[1]], [], ["n02112837"]]}).to_parquet(tmp_path / "sub.parquet")
    report = run_freq(spark, build_config(FreqConfig, {"input": str(tmp_path / "sub.parquet"),
                                                      "out": str(tmp_path / "f2.txt")}))
    counts = [c for _, c in read_frequency_file(str(tmp_path / "f2.txt"), 1000)]
    assert counts[0] == 1 and counts[1] == 2 and counts[w.index("n02110185")] == 1 and sum(counts) == 4
    assert (report.read, report.kept) == (4, 3) and report.info["examples_counted"] == 4


def test_freq_of_captions_and_bad_values(spark, tmp_path):
    from curation.frequency import read_frequency_file
    from jobs.framework.config import build_config
    from jobs.freq import FreqConfig, run_freq

    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps({"caption": c}) for c in
                                                ["a goldfish and a tench", "GOLDFISH!", "goldfishes", None]))
    report = run_freq(spark, build_config(FreqConfig, {"input": str(tmp_path / "c.jsonl"),
                                                      "out": str(tmp_path / "f.txt"), "single_label": True}))
    counts = [c for _, c in read_frequency_file(str(tmp_path / "f.txt"), 1000)]
    assert counts[1] == 1 and sum(counts) == 1 and report.info["by"] == "caption"
    assert (report.read, report.kept, report.dropped) == (4, 1, {"no_class": 2, "multi_label": 1})

    (tmp_path / "bad.tsv").write_text("filepath\tlabel\na\t5\nb\t1000\n")
    with pytest.raises(InputError, match=r"column 'label' holds '1000', which is not an ImageNet-1k class"):
        run_freq(spark, build_config(FreqConfig, {"input": str(tmp_path / "bad.tsv"), "out": str(tmp_path / "g.txt")}))
    (tmp_path / "nolabel.tsv").write_text("filepath\tcaption\na\tb\n")
    with pytest.raises(InputError, match="no column 'label'"):
        run_freq(spark, build_config(FreqConfig, {"input": str(tmp_path / "nolabel.tsv"), "by": "label",
                                                  "out": str(tmp_path / "g.txt")}))
    assert not (tmp_path / "g.txt").exists()

