"""Exact text-to-text top-k search inside Spark tasks (wraps `curation.knn`).

Each task holds a slice of the LAION caption embeddings (a row range of one precomputed
`text_emb_<part>.npy`, or a partition of the embeddings written by `curate laionet
embed`) and a chunk of the query embeddings, and emits its per-query top-k as rows
(qid, laion_index, similarity); the job merges the tasks' lists with a Spark window.
Each task's list is exact, so the merged list is the exact global top-k.

The query embeddings never pass through the driver (448,896 x 512 float32 is 0.9 GB):
tasks encode fixed pieces of `QUERY_PIECE_ROWS` texts and write each as an npy file
(`QueryPieces`), and a search task reads the pieces of its query chunk, once per Python
worker (the last chunk read is kept).

The shortlist products run on the executor's GPU when it has one (`device="auto"`):
float16 products there, float32 on CPU; the final scores are float64 on the CPU either
way, so the output does not depend on the device.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import pandas as pd

from curation import knn
from udfs.worker import on_worker

RESULT_SCHEMA = "qid int, laion_index long, similarity float"


@dataclass(frozen=True)
class SearchOptions:
    k: int
    block_rows: int = 16384
    query_rows: int = 1024
    #: "auto" (the GPU Spark gave the task, if any), "cpu" or "cuda"
    device: str = "auto"
    #: at most this many corpus rows are held in memory by a task at once
    chunk_rows: int = 1_000_000


#: texts per query piece (one encode task, one npy file)
QUERY_PIECE_ROWS = 8192


@dataclass(frozen=True)
class QueryPieces:
    """Query embeddings as `<folder>/<piece:06d>.npy` files of `piece_rows` rows (the last
    one shorter), `n` rows in all; `folder` is a local path or any URL that the
    driver and every executor reach (it sits beside the job's output); the pieces are
    written and read through `udfs.files` (fsspec for other schemes on the workers)."""
    folder: str
    n: int
    piece_rows: int = QUERY_PIECE_ROWS

    def path(self, piece: int) -> str:
        return f"{self.folder.rstrip('/')}/{piece:06d}.npy"

    def write(self, piece: int, emb: np.ndarray) -> None:
        """Write one piece (a complete file appears at once: `udfs.files.write_new`)."""
        import io

        from udfs import files

        buf = io.BytesIO()
        np.save(buf, emb)
        files.write_new(self.path(piece), buf.getvalue())

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) from the pieces that hold them."""
        import io

        from udfs import files

        parts = []
        for piece in range(start // self.piece_rows, (max(stop, start + 1) - 1) // self.piece_rows + 1):
            arr = np.load(io.BytesIO(files.read_bytes(self.path(piece))))
            lo = max(start - piece * self.piece_rows, 0)
            parts.append(arr[lo:stop - piece * self.piece_rows])
        out = np.concatenate(parts) if parts else np.empty((0, 0), np.float32)
        if len(out) != stop - start:
            raise RuntimeError(f"{self.folder}: read {len(out)} query embeddings for rows {start}..{stop}")
        return out


def query_chunk(pieces: QueryPieces, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of the query embeddings, read once per Python worker (only the
    last chunk is kept: the chunks' searches run one after the other)."""
    return on_worker(("query-chunk", pieces, start, stop), lambda: pieces.read(start, stop), slot="query-chunk")


def encode_query_pieces(spec, pieces: QueryPieces) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """applyInPandas function over (piece, qid, text) grouped by piece: encodes the piece's
    texts in qid order, writes its npy file, returns (piece, rows, dim)."""
    def run(group: pd.DataFrame) -> pd.DataFrame:
        from udfs.encoders import get_text_encoder

        group = group.sort_values("qid")
        piece = int(group["piece"].iloc[0])
        first = piece * pieces.piece_rows
        if group["qid"].tolist() != list(range(first, first + len(group))):
            raise RuntimeError(f"query piece {piece}: the qids are not {first}..{first + len(group) - 1}")
        emb = get_text_encoder(spec).encode(group["text"].tolist())
        pieces.write(piece, emb)
        return pd.DataFrame({"piece": [piece], "rows": [len(emb)], "dim": [emb.shape[1]]})
    return run


def _shortlist_backend(device: str) -> Tuple[Optional[knn.BlockTopK], str]:
    """(block_topk, precision) for this task: the GPU Spark gave the task (or, with
    "cuda", device 0), float16 products there; numpy float32 on the CPU."""
    from udfs.encoders import EncoderSpec, task_device

    resolved, _ = task_device(EncoderSpec(device=device))
    if not resolved.startswith("cuda"):
        return None, "fp32"
    return on_worker(("block-topk", resolved), lambda: knn.torch_block_topk(resolved)), "fp16"


def search_chunks(chunks: Iterable[Tuple[np.ndarray, np.ndarray]], queries: np.ndarray,
                  opts: SearchOptions) -> Tuple[np.ndarray, np.ndarray]:
    """Exact top-k of `queries` over a sequence of (embeddings, laion_indices) chunks."""
    block_topk, precision = _shortlist_backend(opts.device)
    best = None
    for emb, ids in chunks:
        if len(ids) == 0:
            continue
        part = knn.exact_topk(queries, emb, ids, opts.k, block_rows=opts.block_rows,
                              query_rows=opts.query_rows, precision=precision, block_topk=block_topk)
        best = part if best is None else knn.merge_topk([best, part], opts.k)
    if best is None:
        return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0), np.float32)
    return best


def result_rows(ids: np.ndarray, sims: np.ndarray, qid_offset: int = 0) -> pd.DataFrame:
    """The long form of per-query lists: one row per (query, hit)."""
    nq, m = ids.shape
    return pd.DataFrame({"qid": np.repeat(np.arange(nq, dtype=np.int32) + qid_offset, m),
                         "laion_index": ids.reshape(-1), "similarity": sims.reshape(-1)})


# ---------------------------------------------------------------- precomputed npy slices
def caption_mask(parquet_path: str, start: int, stop: int, text_column: str = "TEXT") -> np.ndarray:
    """True for rows [start, stop) of a LAION part that have a non-blank caption
    (only the row groups that overlap the range are read)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(parquet_path)
    groups, first, offset = [], None, 0
    for g in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if offset < stop and offset + n > start:
            groups.append(g)
            first = offset if first is None else first
        offset += n
    if not groups:
        return np.zeros(0, bool)
    texts = pf.read_row_groups(groups, columns=[text_column]).column(text_column)
    texts = texts.slice(start - first, stop - start)
    nonblank = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(texts)), 0)
    return np.asarray(pc.fill_null(nonblank, False).to_numpy(zero_copy_only=False), dtype=bool)


def npy_slice(npy_path: str, parquet_path: str, part: int, start: int, stop: int):
    """(embeddings, laion_indices) of rows [start, stop) of a part that have a caption.

    The npy file is memory-mapped; only rows with a caption are kept."""
    from curation.laion import INDEX_SHIFT_PER_PART

    emb = np.load(npy_path, mmap_mode="r")[start:stop]
    mask = caption_mask(parquet_path, start, stop)
    ids = part * INDEX_SHIFT_PER_PART + np.arange(start, stop, dtype=np.int64)
    if mask.all():
        return emb, ids
    return emb[mask], ids[mask]


def search_npy_slices(pieces: QueryPieces, start: int, stop: int,
                      opts: SearchOptions) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """mapInPandas function over a DataFrame of slices (npy, parquet, part, start, stop):
    the top-k of queries [start, stop) (emitted with their qids)."""
    qid_offset = start

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        queries = query_chunk(pieces, start, stop)
        slices: List[tuple] = [tuple(r) for b in batches
                               for r in b[["npy", "parquet", "part", "start", "stop"]].itertuples(index=False)]
        if not slices:
            return
        chunks = (npy_slice(*s) for s in slices)
        yield result_rows(*search_chunks(chunks, queries, opts), qid_offset)
    return run


# ---------------------------------------------------------------- embeddings written by `embed`
def search_embedding_batches(pieces: QueryPieces, start: int, stop: int,
                             opts: SearchOptions) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """mapInPandas function over (laion_index, embedding) rows: one top-k list of queries
    [start, stop) per partition, searching `chunk_rows` rows at a time."""
    qid_offset = start

    def chunks(batches: Iterator[pd.DataFrame]):
        buf: List[pd.DataFrame] = []
        size = 0
        for b in batches:
            buf.append(b)
            size += len(b)
            if size >= opts.chunk_rows:
                yield _stack(buf)
                buf, size = [], 0
        if buf:
            yield _stack(buf)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        ids, sims = search_chunks(chunks(batches), query_chunk(pieces, start, stop), opts)
        if ids.shape[1]:
            yield result_rows(ids, sims, qid_offset)
    return run


def _stack(frames: List[pd.DataFrame]) -> Tuple[np.ndarray, np.ndarray]:
    df = pd.concat(frames, ignore_index=True)
    emb = np.stack(df["embedding"].to_numpy()).astype(np.float32) if len(df) else np.empty((0, 0), np.float32)
    return emb, df["laion_index"].to_numpy(np.int64)


# ---------------------------------------------------------------- text -> embedding rows
EMBEDDING_SCHEMA = "{id} long, embedding array<float>"


def embed_batches(spec, id_col: str, text_col: str) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """mapInPandas function (id, text) -> (id, embedding): L2-normalised float32 vectors
    from the worker's cached encoder (`udfs.encoders`)."""
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from udfs.encoders import get_text_encoder

        encoder = get_text_encoder(spec)
        for b in batches:
            emb = encoder.encode(b[text_col].tolist())
            yield pd.DataFrame({id_col: b[id_col].to_numpy(np.int64), "embedding": list(emb)})
    return run
