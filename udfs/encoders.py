"""Text encoders for Spark: open_clip and sentence-transformers, one model per Python worker.

API (reused by every job that embeds text):

    spec = EncoderSpec("open_clip", model="ViT-B-32", pretrained="openai")
    spec.check()                                  # before Spark starts: one-line errors
    enc = get_text_encoder(spec)                  # cached per process (and device)
    enc.encode(["a dog", "a cat"])                # np.float32 [n, d], rows L2-normalised
    udf = cosine_to_queries_udf(spec, broadcast_query_embeddings)   # pandas UDF factory

Why it is shaped like this:
- Loading a CLIP model costs seconds and hundreds of MB, so a Spark Python worker builds
  it once (module global keyed by spec + device) and every task it runs reuses it.
- The device is decided per task: when Spark's resource scheduling gave the task a GPU
  (`TaskContext.get().resources()['gpu']`) the model runs there in fp16, otherwise on the
  CPU in fp32 (`device`/`precision` override this).
- CLIP's text tower is causal and pools at the EOT token, so tokens after EOT never
  influence the result. Captions are therefore sorted by token length and each batch is cut
  to its longest caption instead of the 77-token context: LAION captions average ~20
  tokens, so this is most of the speed-up over padding to 77. The trimmed forward pass
  (`_encode_clip_tokens`) is exact (tested against open_clip's own `encode_text`).
  Captions longer than the context are truncated by open_clip's tokenizer (EOT kept last).
- Batches also hold at most `batch_size * TOKENS_PER_ROW` padded tokens (`length_batches`):
  web captions are mostly short with a few running to the full context, and without the
  cap a partition's long captions pad a whole `batch_size` batch of medium ones to the
  context. Both encoders batch this way (padding is masked in both, so it changes no value
  beyond float noise).
"""
import json
import os
import socket
from dataclasses import dataclass, replace
from typing import Dict, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import urlparse

import numpy as np

from curation.errors import ConfigError, InputError
from udfs.worker import on_worker

ENCODERS = ("open_clip", "sentence-transformers")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class EncoderSpec:
    """What model to load and how to run it (hashable: it keys the per-worker cache).

    - encoder `open_clip`: `model` is an open_clip model name (`ViT-B-32`) or a path to a
      model-config JSON; `pretrained` is a pretrained tag (`openai`) or a local checkpoint.
    - encoder `sentence-transformers`: `model` is a local model directory; `pretrained` unused.
    - `quick_gelu`: set by `resolve()` from the pretrained tag (OpenAI weights need it).
    """
    encoder: str = "open_clip"
    model: str = "ViT-B-32"
    pretrained: Optional[str] = "openai"
    batch_size: int = 256
    device: str = "auto"
    precision: str = "auto"
    quick_gelu: bool = False

    # ------------------------------------------------------------ validation (driver side)
    def check(self, keys: Dict[str, str] | None = None) -> None:
        """Raise ConfigError (naming the config key) when the model cannot be loaded here.

        Runs before Spark starts. A pretrained tag must be in the local cache or be
        downloadable now (it is fetched here, once, so workers never download).
        """
        keys = {"encoder": "encoder", "model": "model", "pretrained": "pretrained",
                "batch_size": "batch_size", **(keys or {})}
        if self.encoder not in ENCODERS:
            raise ConfigError(keys["encoder"], f"unknown encoder {self.encoder!r}; use one of {', '.join(ENCODERS)}")
        if self.batch_size < 1:
            raise ConfigError(keys["batch_size"], f"must be >= 1, got {self.batch_size}")
        if self.device not in DEVICES:
            raise ConfigError("device", f"got {self.device!r}; use one of {', '.join(DEVICES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError("precision", f"got {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if self.encoder == "sentence-transformers":
            if not os.path.isfile(os.path.join(self.model, "modules.json")) and \
                    not os.path.isfile(os.path.join(self.model, "config.json")):
                raise ConfigError(keys["model"], f"{self.model!r} is not a local sentence-transformers "
                                                 "model directory (no modules.json or config.json)")
            return
        self.resolve(keys)

    def resolve(self, keys: Dict[str, str] | None = None) -> "EncoderSpec":
        """The same spec with a pretrained tag replaced by its local checkpoint file.

        Workers then load a file and never touch the network; `quick_gelu` carries the
        activation the tag's weights were trained with (OpenAI's are QuickGELU).
        """
        keys = {"model": "model", "pretrained": "pretrained", **(keys or {})}
        if self.encoder != "open_clip":
            return self
        import open_clip
        from open_clip.pretrained import get_pretrained_cfg

        name = _open_clip_model_name(self.model, keys["model"])
        if not self.pretrained or os.path.isfile(self.pretrained):
            return self
        if os.sep in self.pretrained or self.pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):
            raise ConfigError(keys["pretrained"], f"checkpoint file not found: {self.pretrained}")
        tag_cfg = get_pretrained_cfg(name, self.pretrained)
        if not tag_cfg:
            tags = open_clip.list_pretrained_tags_by_model(name)
            raise ConfigError(keys["pretrained"],
                              f"{self.pretrained!r} is neither a checkpoint file nor a pretrained tag of "
                              f"{name} (tags: {', '.join(tags) or 'none'})")
        path = _cached_or_downloaded(tag_cfg, name, self.pretrained, keys["pretrained"])
        return replace(self, pretrained=path, quick_gelu=bool(tag_cfg.get("quick_gelu", False)))


def _open_clip_model_name(model: str, key: str) -> str:
    """An open_clip model name; a config-JSON path is registered under its file stem."""
    import open_clip

    if model.endswith(".json"):
        if not os.path.isfile(model):
            raise ConfigError(key, f"model config file not found: {model}")
        try:
            with open(model) as fh:
                model_cfg = json.load(fh)
        except (OSError, ValueError) as e:
            raise ConfigError(key, f"{model} is not a readable JSON file: {e}") from None
        if not isinstance(model_cfg, dict) or not {"embed_dim", "text_cfg"} <= set(model_cfg):
            raise ConfigError(key, f"{model} is not an open_clip model config (needs embed_dim and text_cfg)")
        open_clip.add_model_config(model)
        return os.path.splitext(os.path.basename(model))[0]
    if model not in open_clip.list_models():
        raise ConfigError(key, f"unknown open_clip model {model!r} (see open_clip.list_models(), "
                               "or pass a model-config JSON path)")
    return model


def _reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        return False
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _cached_or_downloaded(tag_cfg: dict, model: str, tag: str, key: str) -> str:
    """Local path of a tag's weights: from the HF cache, else downloaded now, else an error."""
    from open_clip.pretrained import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME, download_pretrained

    hub = tag_cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = os.path.split(hub)
        filename = filename or HF_WEIGHTS_NAME
        candidates = [filename[:-4] + ".safetensors" if filename.endswith((".bin", ".pth")) else filename,
                      HF_SAFE_WEIGHTS_NAME, filename]
        for fn in candidates:
            hit = try_to_load_from_cache(repo_id, fn)
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit
        host = "huggingface.co"
    else:
        host = urlparse(tag_cfg.get("url", "")).hostname or "?"
    if not _reachable(host):
        raise ConfigError(key, f"weights {tag!r} of {model} are not in the local cache and {host} cannot be "
                               f"reached (or HF_HUB_OFFLINE is set); pass a local checkpoint path instead")
    try:
        return download_pretrained(tag_cfg)
    except Exception as e:  # noqa: BLE001 - any download failure is the same user error
        raise ConfigError(key, f"could not download weights {tag!r} of {model}: {str(e).splitlines()[0]}") from None


# ---------------------------------------------------------------- device choice (per task)
def task_device(spec: EncoderSpec) -> Tuple[str, str]:
    """(torch device, precision) for the current task/process.

    `auto`: the GPU Spark assigned to this task (fp16), or, outside Spark tasks, CUDA
    device 0 when present; otherwise CPU fp32.
    """
    device = spec.device
    if device == "auto":
        device = "cpu"
        gpu = _task_gpu()
        if gpu is not None:
            device = f"cuda:{gpu}"
        elif not _in_spark_task():
            import torch

            if torch.cuda.is_available():
                device = "cuda:0"
    elif device == "cuda":
        gpu = _task_gpu()
        device = f"cuda:{gpu}" if gpu is not None else "cuda:0"
    precision = spec.precision
    if precision == "auto":
        precision = "fp16" if device.startswith("cuda") else "fp32"
    return device, precision


def _task_context():
    """The running Spark task's TaskContext, or None outside a task (or without pyspark)."""
    try:
        from pyspark import TaskContext
    except ImportError:
        return None
    return TaskContext.get()


def _in_spark_task() -> bool:
    return _task_context() is not None


def limit_threads_to_task() -> None:
    """In a Spark task, let torch use the task's cores (`spark.task.cpus`), not the machine's.

    torch sizes its intra-op pool to every core of the machine, and every Python worker on
    an executor has its own pool, so with one worker per core the pools oversubscribe the
    cores Spark gave each task. Measured with MiniLM on this 2-core machine: two processes
    encoding 1,400 captions each at the same time took 152 s with 1 thread each and 169 s
    with 2 threads each (the default).
    """
    ctx = _task_context()
    if ctx is None:
        return
    import torch

    cpus = max(1, int(ctx.cpus()))
    if torch.get_num_threads() != cpus:
        torch.set_num_threads(cpus)


def _task_gpu() -> Optional[str]:
    ctx = _task_context()
    if ctx is None:
        return None
    gpu = ctx.resources().get("gpu")
    if gpu is None or not gpu.addresses:
        return None
    return gpu.addresses[0]


# ---------------------------------------------------------------- encoders
#: a batch holds at most batch_size * TOKENS_PER_ROW padded tokens (see `length_batches`)
TOKENS_PER_ROW = 64


def length_batches(lengths: Sequence[int], batch_size: int,
                   max_tokens: Optional[int] = None) -> List[np.ndarray]:
    """Indices of `lengths` cut into batches, shortest first: each batch has at most
    `batch_size` rows, and (unless it is one row) at most `max_tokens` padded tokens
    (rows x its longest length; default `batch_size * TOKENS_PER_ROW`).

    On the demo's 4,000 sample captions cut into two partitions (MiniLM, 256-token context,
    3% at the context, median 9 tokens), a partition's padded tokens fall from 69k to 35k.
    """
    budget = batch_size * TOKENS_PER_ROW if max_tokens is None else max_tokens
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    batches, start, n = [], 0, len(order)
    while start < n:
        end = start + 1
        while (end < n and end - start < batch_size
               and (end - start + 1) * max(int(lengths[order[end]]), 1) <= budget):
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


class TextEncoder:
    """`encode(texts) -> float32 [n, d]` with L2-normalised rows, in input order.

    A null text is encoded as the string "None", as the original did (`fillna('None')`).
    """

    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = ["None" if t is None else str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._encode(texts)
        if out.shape[0] != len(texts):  # a hard check (`python -O` drops asserts)
            raise RuntimeError(f"encoder returned {out.shape[0]} rows for {len(texts)} texts")
        out = out.astype(np.float32, copy=False)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _encode(self, texts: List[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class OpenClipTextEncoder(TextEncoder):
    """open_clip text tower; length-bucketed batches, exact for CLIP's causal text tower."""

    def __init__(self, spec: EncoderSpec, device: str, precision: str):
        import open_clip
        import torch

        name = _open_clip_model_name(spec.model, "model")
        try:
            self.model = open_clip.create_model(name, pretrained=spec.pretrained or None, precision=precision,
                                                device=device, force_quick_gelu=spec.quick_gelu)
        except Exception as e:  # noqa: BLE001 - torch/pickle raise many types for a bad file
            # a corrupt file or weights of another architecture: name both, in one line
            raise InputError(f"cannot load checkpoint {spec.pretrained} into open_clip model {name}: "
                             f"{str(e).strip().splitlines()[0][:300]}") from None
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(name)
        self.device = torch.device(device)
        self.batch_size = spec.batch_size
        # trimming padding is only exact for the plain CLIP text tower: causal mask and
        # pooling at the EOT/EOS token; other towers (HF text models, CoCa) get full context
        self.trimmable = (isinstance(self.model, open_clip.model.CLIP)
                          and getattr(self.model, "attn_mask", None) is not None
                          and self.model.text_pool_type in ("argmax", "eos"))
        self.dim = int(self.model.text_projection.shape[-1]) if self.trimmable else \
            int(self.model.encode_text(self.tokenizer(["a"]).to(self.device)).shape[-1])

    def tokenize(self, texts: List[str]):
        return self.tokenizer(texts)

    def _encode(self, texts: List[str]) -> np.ndarray:
        import torch

        tokens = self.tokenize(texts)
        lengths = (tokens != 0).sum(dim=1).numpy()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for idx in length_batches(lengths, self.batch_size):
                batch = tokens[torch.from_numpy(idx)]
                if self.trimmable:
                    batch = batch[:, :max(int(lengths[idx].max()), 1)]
                    emb = _encode_clip_tokens(self.model, batch.to(self.device))
                else:
                    emb = self.model.encode_text(batch.to(self.device))
                out[idx] = emb.float().cpu().numpy()
        return out


def _encode_clip_tokens(model, tokens):
    """open_clip `CLIP.encode_text` for a batch cut to its longest sequence L < context.

    Identical to the full-context pass: positions and the causal mask are sliced to L, and
    pooling picks the EOT token, which only attends to positions before it.
    """
    import torch
    from open_clip.transformer import text_global_pool

    seq_len = tokens.shape[1]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype)
    x = x + model.positional_embedding[:seq_len].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:seq_len, :seq_len])
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    if isinstance(model.text_projection, torch.nn.Linear):
        return model.text_projection(x)
    return x @ model.text_projection


class SentenceTransformerEncoder(TextEncoder):
    """A local sentence-transformers model (each batch padded to its longest caption)."""

    def __init__(self, spec: EncoderSpec, device: str, precision: str):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(spec.model), device=device)
        if precision == "fp16":
            self.model.half()
        elif precision == "bf16":
            self.model.bfloat16()
        self.batch_size = spec.batch_size
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim())

    def _token_lengths(self, texts: List[str]) -> np.ndarray:
        """Token counts (truncated at the model's limit) that size the batches; only batch
        composition depends on them, never a value."""
        tokenizer = getattr(self.model, "tokenizer", None)
        limit = getattr(self.model, "max_seq_length", None)
        if tokenizer is None or limit is None:  # a model without a HF tokenizer: characters
            return np.fromiter((len(t) // 4 + 1 for t in texts), np.int64, len(texts))
        ids = tokenizer(texts, truncation=True, max_length=int(limit))["input_ids"]
        return np.fromiter((len(i) for i in ids), np.int64, len(texts))

    def _encode(self, texts: List[str]) -> np.ndarray:
        lengths = self._token_lengths(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for idx in length_batches(lengths, self.batch_size):
            out[idx] = self.model.encode([texts[i] for i in idx], batch_size=len(idx), convert_to_numpy=True,
                                         normalize_embeddings=True, show_progress_bar=False)
        return out


def get_text_encoder(spec: EncoderSpec) -> TextEncoder:
    """The process-wide encoder for `spec` on this task's device (built on first use)."""
    device, precision = task_device(spec)
    limit_threads_to_task()
    cls = OpenClipTextEncoder if spec.encoder == "open_clip" else SentenceTransformerEncoder
    return on_worker(("text-encoder", spec, device, precision), lambda: cls(spec, device, precision))


# ---------------------------------------------------------------- Spark UDF
def encode_on_executors(spark, spec: EncoderSpec, texts: Sequence[str]) -> np.ndarray:
    """Embeddings [n, d] of a few thousand texts (e.g. the distinct queries), in input order,
    encoded in Spark tasks rather than on the driver.

    Loading the model on the driver as well as in every executor Python worker cost a full
    import + load (~20 s of CPU for MiniLM, more for CLIP) before the first task could start;
    now only the workers load it, and this small job, spread over up to
    `defaultParallelism` tasks, loads it in every worker slot at once, where the scoring job
    that follows finds it cached (`get_text_encoder`, reused Python workers). Texts are
    encoded in fixed chunks of `batch_size`, so the floats do not depend on the cluster.
    """
    import pandas as pd

    texts = list(texts)
    if not texts:
        return np.zeros((0, 1), np.float32)
    size = spec.batch_size
    chunks = (len(texts) + size - 1) // size
    slots = max(1, min(chunks, spark.sparkContext.defaultParallelism))

    def encode_chunks(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        encoder = get_text_encoder(spec)
        for b in batches:
            for chunk in b["id"].tolist():
                start = int(chunk) * size
                emb = encoder.encode(texts[start:start + size])
                yield pd.DataFrame({"i": np.arange(start, start + len(emb), dtype=np.int64), "embedding": list(emb)})

    rows = (spark.range(0, chunks, 1, slots).mapInPandas(encode_chunks, "i long, embedding array<float>")
            .toPandas().sort_values("i"))
    if len(rows) != len(texts):
        raise AssertionError(f"encoded {len(rows)} of {len(texts)} texts")
    return np.stack(rows["embedding"].to_numpy()).astype(np.float32)


def cosine_to_queries_udf(spec: EncoderSpec, query_embeddings):
    """A pandas UDF `(text, query_id) -> cosine(text, query[query_id])` (double).

    `query_embeddings` is a broadcast of the L2-normalised [n_queries, d] float32 matrix:
    the few distinct queries are encoded once on the driver, not once per row.
    """
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("double")
    def cosine(batches: Iterator[Tuple[pd.Series, pd.Series]]) -> Iterator[pd.Series]:
        encoder = get_text_encoder(spec)
        queries = query_embeddings.value
        for texts, query_ids in batches:
            emb = encoder.encode(texts.tolist())
            q = queries[query_ids.to_numpy(dtype=np.int64)]
            yield pd.Series(np.einsum("nd,nd->n", emb, q).astype(np.float64), index=texts.index)

    return cosine
