"""Parquet written by the Python workers (`jobs.io.output.write_parquet_in_tasks`): one file
per partition from the attempt Spark accepted, whatever failed or was killed before."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO

# A session that retries tasks (local[2,3]: up to 3 attempts), so it runs in its own
# process. Partition 0's first attempt writes a row group, then fails with an exception;
# partition 1's first attempt writes a row group, records what is in the attempts folder,
# then its Python worker dies (os._exit), leaving its file behind.
_SCRIPT = r"""
import json, os, sys
sys.path.insert(0, {repo!r})
from jobs.io import output
from jobs.framework.session import create_session

out, seen = sys.argv[1], sys.argv[2]
spark = create_session("local[2,3]", app_name="sink-retries")
df = spark.range(0, 40000, numPartitions=2).selectExpr("id", "cast(id * 7 as string) as s")

def fail_first_attempts(batches):
    from pyspark import TaskContext
    context = TaskContext.get()
    for i, batch in enumerate(batches):
        yield batch
        if context.attemptNumber() == 0 and i == 0:
            if context.partitionId() == 0:
                raise RuntimeError("first attempt of partition 0 fails")
            with open(seen, "w") as fh:
                json.dump(sorted(os.listdir(os.path.join(out, output.ATTEMPTS_DIR))), fh)
            os._exit(3)

output.write_parquet_in_tasks(spark, df, fail_first_attempts, "id long, s string", out, row_group_rows=1000)
spark.stop()
"""


@pytest.mark.slow
def test_failed_and_killed_attempts_leave_one_file_per_partition(tmp_path):
    out, seen = tmp_path / "out", tmp_path / "seen.json"
    done = subprocess.run([sys.executable, "-c", _SCRIPT.format(repo=REPO), str(out), str(seen)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # the killed attempt had written a file of partition 1 (the failed one removed its own)
    left_behind = json.loads(seen.read_text())
    assert any(name.startswith("part-00001-") for name in left_behind), left_behind
    assert sorted(os.listdir(out)) == ["part-00000.parquet", "part-00001.parquet"]
    table = pq.read_table(out).sort_by("id")
    assert table.column("id").to_pylist() == list(range(40000))
    assert table.column("s").to_pylist() == [str(i * 7) for i in range(40000)]
    # each partition's rows, once, in the accepted attempt's file
    assert pq.read_metadata(out / "part-00000.parquet").num_rows == 20000
    assert pq.read_metadata(out / "part-00000.parquet").num_row_groups >= 2


def test_no_rows_at_all_still_gives_a_dataset_with_the_schema(spark, tmp_path):
    from jobs.io import output

    out = str(tmp_path / "empty")
    df = spark.range(0, 100, numPartitions=3).selectExpr("id", "cast(id as string) as s")
    output.write_parquet_in_tasks(spark, df, lambda batches: (b.slice(0, 0) for b in batches),
                                  "id long, s string", out)
    assert sorted(os.listdir(out)) == ["part-00000.parquet"]
    back = spark.read.parquet(out)
    assert back.count() == 0
    assert [(f.name, f.dataType.simpleString()) for f in back.schema] == [("id", "bigint"), ("s", "string")]


def test_a_batch_of_the_wrong_type_fails_the_job_and_leaves_no_file(spark, tmp_path):
    from jobs.io import output

    out = str(tmp_path / "wrong")
    df = spark.range(0, 10, numPartitions=1)

    def wrong(batches):
        for b in batches:
            yield pa.RecordBatch.from_arrays([pa.array(["x"] * b.num_rows)], names=["id"])

    with pytest.raises(Exception, match="id"):
        output.write_parquet_in_tasks(spark, df, wrong, "id long", out)
    assert os.listdir(out) == []  # the attempts folder is gone, nothing was kept


def test_outputs_that_are_not_local_are_written_by_spark_with_the_same_rows(spark, tmp_path, monkeypatch):
    from jobs.io import output

    df = spark.range(0, 5000, numPartitions=2).selectExpr("id", "cast(id % 13 as string) as s")

    def odd_rows(batches):  # `s` dictionary-encoded, as the label job yields wnid and lemma
        for b in batches:
            b = b.filter(pc.equal(pc.bit_wise_and(b.column("id"), 1), 1))
            yield pa.RecordBatch.from_arrays([b.column("id"), pc.dictionary_encode(b.column("s"))], names=["id", "s"])

    ours, theirs = str(tmp_path / "ours"), str(tmp_path / "theirs")
    output.write_parquet_in_tasks(spark, df, odd_rows, "id long, s string", ours)
    monkeypatch.setattr(output, "_local_for_hadoop", lambda session, path: None)  # as for hdfs://
    output.write_parquet_in_tasks(spark, df, odd_rows, "id long, s string", theirs)
    assert "_SUCCESS" in os.listdir(theirs) and "_SUCCESS" not in os.listdir(ours)
    rows = [sorted(tuple(r) for r in spark.read.parquet(p).collect()) for p in (ours, theirs)]
    assert rows[0] == rows[1] == [(i, str(i % 13)) for i in range(1, 5000, 2)]
    assert pq.read_table(ours).schema.field("s").type == pa.string()  # read back as declared


def test_a_file_the_driver_cannot_see_is_a_clear_error(spark, tmp_path, monkeypatch):
    """A local output on a cluster without a shared file system: the executors' files are
    not where the driver looks. That is an error naming the cause, not a partial output."""
    import udfs.parquet_sink as sink
    from curation.errors import InputError
    from jobs.io import output

    real = sink.write_batches

    def written_elsewhere(*args, **kwargs):
        run = real(*args, **kwargs)

        def moved(batches):
            for status in run(batches):
                path = status.column("path")[0].as_py()
                if path:  # as if the file were on the executor's own disk
                    os.rename(path, path + ".on-another-machine")
                yield status

        return moved

    monkeypatch.setattr(sink, "write_batches", written_elsewhere)
    df = spark.range(0, 100, numPartitions=1)
    with pytest.raises(InputError, match="cannot see"):
        output.write_parquet_in_tasks(spark, df, lambda batches: batches, "id long", str(tmp_path / "out"))
