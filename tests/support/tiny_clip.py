"""A tiny random-weight open_clip model for tests: a model-config JSON + a checkpoint file.

Tests must not download weights, but they should still go through open_clip's real
loading code (`create_model(<config>, pretrained=<checkpoint path>)`). The model keeps
CLIP's real tokenizer (vocabulary 49,408, context 77) and text-tower layout (causal mask,
EOT pooling), only much narrower and shallower, so it loads and runs in well under a
second.
"""
from __future__ import annotations

import json
import os
from typing import Tuple

TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def write_tiny_clip(directory: str, name: str = "tiny-clip-test", seed: int = 0) -> Tuple[str, str]:
    """Write `<name>.json` and `<name>.pt` (random weights from `seed`) into `directory`.

    Returns (config_json_path, checkpoint_path): pass them as `--model` and `--pretrained`.
    Existing files are reused, so session-scoped fixtures can call this freely.
    """
    import torch
    import open_clip

    os.makedirs(directory, exist_ok=True)
    config_path = os.path.join(directory, f"{name}.json")
    checkpoint_path = os.path.join(directory, f"{name}.pt")
    if os.path.exists(config_path) and os.path.exists(checkpoint_path):
        return config_path, checkpoint_path
    with open(config_path, "w") as fh:
        json.dump(TINY_CONFIG, fh)
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**TINY_CONFIG)
    # the text tower is initialised with tiny std; scale it up so that different captions
    # get clearly different embeddings (cosines spread over a useful range)
    with torch.no_grad():
        model.token_embedding.weight.normal_(0, 1.0)
        model.positional_embedding.normal_(0, 0.1)
    torch.save({"state_dict": model.state_dict()}, checkpoint_path)
    return config_path, checkpoint_path
