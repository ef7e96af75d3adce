"""Tiny LoRA and embedding files with the key names real trainers write (kohya, A1111), for app tests.

Only the shapes that tell a family matter here: an SD 1.x LoRA's cross-attention reads 768-wide text,
an SDXL one has a second text encoder; an SD 1.x embedding is 768 wide.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch
from PIL import Image

from ldm_studio.paths import resource
from tests.app.fake_backend import ScriptedBackend

SD1_KEY = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
SDXL_TE2_KEY = "lora_te2_text_model_encoder_layers_0_self_attn_q_proj"


def write_lora(
    path: Path,
    *,
    family: str = "sd1",
    rank: int = 4,
    tags: dict[str, int] | None = None,
    preview: bool = False,
    seed: int = 0,
) -> Path:
    """A kohya LoRA for ``family`` ("sd1" or "sdxl"); ``tags``: kohya's ss_tag_frequency counts."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    key, width, out = (SD1_KEY, 768, 320) if family == "sd1" else (SDXL_TE2_KEY, 1280, 1280)
    tensors = {
        f"{key}.lora_down.weight": torch.randn(rank, width, generator=generator),
        f"{key}.lora_up.weight": torch.randn(out, rank, generator=generator),
        f"{key}.alpha": torch.tensor(float(rank)),
    }
    metadata = {"ss_tag_frequency": json.dumps({"10_fox": tags})} if tags else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    if preview:
        Image.new("RGB", (96, 64), (220, 120, 40)).save(path.with_suffix(".png"))
    return path


def write_embedding(path: Path, vectors: int = 2, width: int = 768, seed: int = 0) -> Path:
    """An A1111 / kohya ``.safetensors`` embedding (``emb_params``)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    save_file({"emb_params": torch.randn(vectors, width, generator=generator)}, str(path))
    return path


def a1111_lora_hash(path: Path) -> str:
    """A1111's ``Lora hashes`` value from its definition: SHA-256 after the header, 12 digits."""
    data = Path(path).read_bytes()
    header = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + header :]).hexdigest()[:12]


def a1111_embedding_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


@dataclasses.dataclass
class Sd1Backend(ScriptedBackend):
    """The scripted engine, as if an SD 1.5 single file were loaded (its tokenizer is the shipped one)."""

    def load(self, path, device, dtype):  # noqa: ANN001, ANN201
        summary = super().load(path, device, dtype)
        tokenizer = str(resource("configs", "sd1", "tokenizer"))
        self.loaded = dataclasses.replace(summary, family="sd1", tokenizer_path=tokenizer)
        return self.loaded
