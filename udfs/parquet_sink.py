"""Parquet written by the Python workers themselves, for `mapInArrow` jobs whose output
is a local (or shared, mounted) directory.

Why: when a `mapInArrow` function returns its rows to Spark to be written, the JVM
copies every Arrow row into a Spark row and parquet-mr encodes it row by row. For the
label job that was about a quarter of the whole job's time. Written here, the batches go
from Arrow to parquet in C++ (pyarrow), and Spark gets back one small status row per
task.

The commit protocol (the driver side is `jobs.io.output.write_parquet_in_tasks`):
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
from typing import Callable, Iterable, Iterator, List, Optional

import pyarrow as pa
import pyarrow.compute as pc

BatchFunction = Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]

#: Spark schema (DDL) of the status rows returned by `write_batches`
STATUS_SCHEMA = "partition int, path string, rows long"
#: a row group is written when this many rows or bytes (in Arrow memory) are pending
ROW_GROUP_ROWS = 1 << 18
ROW_GROUP_BYTES = 128 << 20


def write_batches(batch_function: BatchFunction, attempts_dir: str, schema: pa.Schema,
                  row_group_rows: int = ROW_GROUP_ROWS) -> BatchFunction:
    """mapInArrow function: run `batch_function` on the task's batches and write what it
    yields to one parquet file in `attempts_dir` (a local directory that exists).

    Each batch must have `schema`'s column names and types; a string column may come
    dictionary-encoded (written as such, read back as strings). A row group is written when
    `row_group_rows` rows or `ROW_GROUP_BYTES` are pending. Yields one status row
    (`STATUS_SCHEMA`): the partition, the file written ("" when no rows), its rows.
    """

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        out = _AttemptFile(os.path.join(attempts_dir, f"part-{partition:05d}-{uuid.uuid4().hex}.parquet"),
                           schema, row_group_rows)
        try:
            for batch in batch_function(batches):
                if batch.num_rows:
                    out.add(batch)
            out.close()
        except BaseException:
            out.abort()
            raise
        yield pa.RecordBatch.from_arrays(
            [pa.array([partition], pa.int32()), pa.array([out.path if out.rows else ""]),
             pa.array([out.rows], pa.int64())],
            names=["partition", "path", "rows"])

    return run


class _AttemptFile:
    """One task attempt's parquet file, opened at its first row group (no rows, no file).

    Row groups are encoded by a background thread: pyarrow releases the GIL while it
    encodes and compresses, so writing a row group overlaps the work on the next batches
    (one row group in flight at a time, in order)."""

    def __init__(self, path: str, schema: pa.Schema, row_group_rows: int):
        self.path, self.schema, self.row_group_rows = path, schema, row_group_rows
        self.rows = 0
        self._pending: List[pa.RecordBatch] = []
        self._pending_rows = self._pending_bytes = 0
        self._sink = self._writer = self._pool = self._in_flight = None
        self._file_schema: Optional[pa.Schema] = None

    def add(self, batch: pa.RecordBatch) -> None:
        if self._file_schema is None:  # dictionary columns of the first batch stay so
            encoded = {f.name for f in batch.schema if pa.types.is_dictionary(f.type)}
            self._file_schema = pa.schema([
                pa.field(f.name, pa.dictionary(pa.int32(), f.type), f.nullable) if f.name in encoded else f
                for f in self.schema])
        batch = conform(batch, self._file_schema)
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self._pending_bytes += batch.nbytes
        self.rows += batch.num_rows
        if self._pending_rows >= self.row_group_rows or self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        import pyarrow.parquet as pq
        from concurrent.futures import ThreadPoolExecutor

        table = pa.Table.from_batches(self._pending, self._file_schema)
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        self._wait()
        if self._writer is None:
            self._sink = pa.OSFile(self.path, "wb")  # creates no directory
            # store_schema=False: readers see the declared types (a dictionary column reads
            # back as its plain type, as Spark reads it)
            self._writer = pq.ParquetWriter(self._sink, self._file_schema, store_schema=False,
                                            **_writer_options(self._file_schema))
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="parquet-sink")
        self._in_flight = self._pool.submit(self._writer.write_table, table, row_group_size=max(len(table), 1))

    def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()  # raises the writer's error, if any

    def close(self) -> None:
        if self._pending:
            self._flush()
        self._wait()
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._pool.shutdown()

    def abort(self) -> None:
        """After a failure: stop writing, remove the file."""
        try:
            self._wait()
        except BaseException:
            pass
        if self._pool is not None:
            self._pool.shutdown()
        if self._sink is not None:
            try:
                self._sink.close()
            finally:
                _remove(self.path)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with `schema`'s names and types, where a column may be dictionary-encoded
    or plain on either side (encoded or decoded to match); any other difference is an
    error naming the column."""
    if batch.schema.equals(schema):
        return batch
    if batch.schema.names != schema.names:
        raise ValueError(f"a batch has columns {batch.schema.names}, expected {schema.names}")
    columns = []
    for column, field in zip(batch.columns, schema):
        if pa.types.is_dictionary(field.type) and not pa.types.is_dictionary(column.type):
            column = pc.dictionary_encode(column)
        elif pa.types.is_dictionary(column.type) and not pa.types.is_dictionary(field.type):
            column = column.dictionary_decode()
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise TypeError(f"column {field.name}: {column.type} where {field.type} is expected ({e})") from None
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def plain(batch_function: BatchFunction) -> BatchFunction:
    """`batch_function` with its dictionary-encoded columns decoded (what Spark's own
    writer path of `write_parquet_in_tasks` needs)."""

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batch_function(batches):
            if any(pa.types.is_dictionary(t) for t in batch.schema.types):
                batch = pa.RecordBatch.from_arrays(
                    [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns],
                    names=batch.schema.names)
            yield batch

    return run


def _writer_options(schema: pa.Schema) -> dict:
    """Dictionary encoding for the string columns only (an integer index is all distinct
    values: trying a dictionary for it is wasted), statistics for the other columns only
    (min/max of captions and URLs cost time and prune nothing). Half the writing time."""
    strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
               or pa.types.is_dictionary(f.type)]
    others = [f.name for f in schema if f.name not in strings]
    return {"use_dictionary": strings or False, "write_statistics": others or False}


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
