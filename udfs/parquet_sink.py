"""Parquet written by the Python workers themselves, for `mapInArrow` jobs whose output
is a local (or shared, mounted) directory.

Why: when a `mapInArrow` function returns its rows to Spark to be written, the JVM
copies every Arrow row into a Spark row and parquet-mr encodes it row by row. For the
label job that was about a quarter of the whole job's time. Written here, the batches go
from Arrow to parquet in C++ (pyarrow), and Spark gets back one small status row per
task.

The commit protocol (the driver side is `jobs.output.write_parquet_in_tasks`):
- every task attempt writes one file `<attempts>/part-<partition>-<random>.parquet`
  (never a directory: a late attempt whose directory was removed fails, it cannot
  recreate it), or no file when it produced no rows;
- a failing attempt removes its own file; a killed one leaves it behind;
- the task's status row names its file, so the driver knows the one attempt Spark
  accepted per partition, moves exactly those into place and deletes the rest.
"""
from __future__ import annotations

import os
import uuid
from typing import Callable, Iterable, Iterator, List

import pyarrow as pa

BatchFunction = Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]

#: Spark schema (DDL) of the status rows returned by `write_batches`
STATUS_SCHEMA = "partition int, path string, rows long"
#: a row group is written when this many rows or bytes (in Arrow memory) are pending
ROW_GROUP_ROWS = 1 << 20
ROW_GROUP_BYTES = 128 << 20


def write_batches(batch_function: BatchFunction, attempts_dir: str, schema: pa.Schema,
                  row_group_rows: int = ROW_GROUP_ROWS) -> BatchFunction:
    """mapInArrow function: run `batch_function` on the task's batches and write what it
    yields to one parquet file in `attempts_dir` (a local directory that exists).

    Each batch must have `schema`'s column names and types. A row group is written when
    `row_group_rows` rows or `ROW_GROUP_BYTES` are pending. Yields one status row
    (`STATUS_SCHEMA`): the partition, the file written ("" when no rows), its rows.
    """

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.parquet as pq
        from pyspark import TaskContext

        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        path = os.path.join(attempts_dir, f"part-{partition:05d}-{uuid.uuid4().hex}.parquet")
        sink = writer = None
        rows = 0
        pending: List[pa.RecordBatch] = []
        pending_rows = pending_bytes = 0

        def flush() -> None:  # one row group per flush: few, large row groups
            nonlocal sink, writer, pending_rows, pending_bytes
            if writer is None:
                sink = pa.OSFile(path, "wb")  # creates no directory
                writer = pq.ParquetWriter(sink, schema, **_writer_options(schema))
            writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=max(pending_rows, 1))
            pending.clear()
            pending_rows = pending_bytes = 0

        try:
            for batch in batch_function(batches):
                if batch.num_rows == 0:
                    continue
                if not batch.schema.equals(schema):
                    batch = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                pending.append(batch)
                pending_rows += batch.num_rows
                pending_bytes += batch.nbytes
                rows += batch.num_rows
                if pending_rows >= row_group_rows or pending_bytes >= ROW_GROUP_BYTES:
                    flush()
            if pending:
                flush()
            if writer is not None:
                writer.close()
                sink.close()
        except BaseException:
            if sink is not None:
                try:
                    sink.close()
                finally:
                    _remove(path)
            raise
        yield pa.RecordBatch.from_arrays(
            [pa.array([partition], pa.int32()), pa.array([path if rows else ""]), pa.array([rows], pa.int64())],
            names=["partition", "path", "rows"])

    return run


def _writer_options(schema: pa.Schema) -> dict:
    """Dictionary encoding for the string columns only (an integer index is all distinct
    values: trying a dictionary for it is wasted), statistics for the other columns only
    (min/max of captions and URLs cost time and prune nothing). Half the writing time."""
    strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    others = [f.name for f in schema if f.name not in strings]
    return {"use_dictionary": strings or False, "write_statistics": others or False}


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
