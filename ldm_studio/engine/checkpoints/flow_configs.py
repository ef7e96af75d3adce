"""Configs for the parts of a FLUX.1 single file: the shipped FLUX.1 configs
(resources/configs/flux-dev, flux-schnell) refitted to the shapes in the files, so that pruned,
quantised-then-cast and tiny test models load too.

What shapes cannot tell follows a convention: CLIP heads are 64 wide, VAE group norms have 32
groups (fewer where a level is narrower), FLUX's rotary split is (1/8, 7/16, 7/16) of a head.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ldm_studio.engine.checkpoints.configs import text_config, vae_config
from ldm_studio.engine.checkpoints.flux_keys import flux_transformer_config
from ldm_studio.engine.checkpoints.layout import LayoutError, clip_text_layout, vae_layout
from ldm_studio.paths import resource

Shapes = dict[str, tuple[int, ...]]
VAE_GROUPS = 32
DERIVED = ("dense_act_fn", "is_gated_act")  # T5Config derives these from feed_forward_proj


def flux_config_folder(dev: bool) -> Path:
    folder = resource("configs", "flux-dev" if dev else "flux-schnell")
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"LDM Studio's FLUX.1 config folder is missing ({folder})")
    return folder


def shipped(folder: Path, component: str) -> dict[str, Any]:
    name = "scheduler_config.json" if component == "scheduler" else "config.json"
    return json.loads((folder / component / name).read_text(encoding="utf-8"))


def transformer(folder: Path, shapes: Shapes) -> dict[str, Any]:
    return {**shipped(folder, "transformer"), **flux_transformer_config(shapes)}


def vae(folder: Path, shapes: Shapes) -> dict[str, Any]:
    layout = vae_layout(shapes)
    config = vae_config(shipped(folder, "vae"), layout)
    narrowest = min(layout.block_out_channels)
    config["norm_num_groups"] = VAE_GROUPS if narrowest % VAE_GROUPS == 0 else math.gcd(VAE_GROUPS, narrowest)
    return config


def clip(folder: Path, shapes: Shapes, tokenizer: Any) -> dict[str, Any]:
    layout = clip_text_layout(shapes)
    config = text_config(shipped(folder, "text_encoder"), layout, layout.num_layers)
    # the tokenizer in use decides the special ids (CLIP pools at the end token)
    config.update(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return config


def t5(folder: Path, shapes: Shapes) -> dict[str, Any]:
    try:
        vocab, width = shapes["shared.weight"]
        buckets, heads = shapes["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
        inner = shapes["encoder.block.0.layer.0.SelfAttention.q.weight"][0]
    except (KeyError, ValueError) as error:
        raise LayoutError(f"it lacks a T5 encoder tensor ({error})") from None
    gated = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" in shapes
    wide = shapes["encoder.block.0.layer.1.DenseReluDense." + ("wi_0" if gated else "wi") + ".weight"][0]
    layers = {int(m.group(1)) for name in shapes if (m := re.match(r"encoder\.block\.(\d+)\.", name))}
    config = {key: value for key, value in shipped(folder, "text_encoder_2").items() if key not in DERIVED}
    return {
        **config,
        "vocab_size": vocab,
        "d_model": width,
        "d_kv": inner // heads,
        "num_heads": heads,
        "d_ff": wide,
        "num_layers": len(layers),
        "num_decoder_layers": len(layers),
        "relative_attention_num_buckets": buckets,
        "feed_forward_proj": "gated-gelu" if gated else "relu",
    }
