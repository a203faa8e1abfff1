"""The text-encoder options, declared once for every job that embeds text.

`curate laionet similarity`, `laionet run` (its similarity stage), `laionet embed` and
`laionet t2t-search` take the same six options from this dataclass (their configs derive
from it), so a new encoder option reaches every one of them and `laionet run` passes it
to its stage by name.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

from jobs.framework.config import opt
from udfs.encoders import DEVICES, ENCODERS, PRECISIONS, EncoderSpec


@dataclass
class EncoderOptions:
    encoder: str = opt("open_clip", "text encoder library", choices=ENCODERS)
    model: str = opt("ViT-B-32", "open_clip model name or model-config JSON path; for "
                                 "sentence-transformers a local model directory")
    pretrained: Optional[str] = opt("openai", "open_clip pretrained tag or local checkpoint path "
                                              "(ignored by sentence-transformers)")
    batch_size: int = opt(256, "texts per forward pass")
    device: str = opt("auto", "where the model (and t2t-search's products) run: auto = the GPU Spark "
                              "assigns to the task, else the CPU", choices=DEVICES)
    precision: str = opt("auto", "auto = fp16 on GPU, fp32 on CPU", choices=PRECISIONS)

    def encoder_spec(self) -> EncoderSpec:
        return EncoderSpec(encoder=self.encoder, model=self.model, pretrained=self.pretrained,
                           batch_size=self.batch_size, device=self.device, precision=self.precision)

    def encoder_config(self) -> dict:
        """The encoder options as a dict (reports; the embeddings' provenance)."""
        return {f.name: getattr(self, f.name) for f in fields(EncoderOptions)}
