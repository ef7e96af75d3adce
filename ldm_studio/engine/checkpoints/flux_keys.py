"""FLUX.1 transformers in Black Forest Labs' original key layout (``double_blocks.*``,
``single_blocks.*``): the diffusers config they make, read from shapes, and their weights renamed.

The renaming is diffusers' own ``convert_flux_transformer_checkpoint_to_diffusers``
(diffusers/loaders/single_file_utils.py), with one change: diffusers splits each single block's
``linear1`` at a fixed width of 3072 (FLUX.1's), so it cannot convert any other width; here the
widths come from the file. tests/engine/test_flow_single_files.py checks that both give the same
tensors for a 3072-wide file.
"""

from __future__ import annotations

import re
from typing import Any

from ldm_studio.engine.checkpoints.layout import LayoutError

Shapes = dict[str, tuple[int, ...]]
FLUX_HEAD_WIDTH = 128
FLUX_ROPE_AXES = (16, 56, 56)  # time, height, width: FLUX.1's split of a 128-wide head
MLP_RATIO = 4  # diffusers' FluxTransformer2DModel has no other

# (diffusers name, BFL name) for tensors that only change name; "{i}" is the block number
DOUBLE_RENAMES = [
    ("norm1.linear", "img_mod.lin"),
    ("norm1_context.linear", "txt_mod.lin"),
    ("attn.norm_q", "img_attn.norm.query_norm"),
    ("attn.norm_k", "img_attn.norm.key_norm"),
    ("attn.norm_added_q", "txt_attn.norm.query_norm"),
    ("attn.norm_added_k", "txt_attn.norm.key_norm"),
    ("ff.net.0.proj", "img_mlp.0"),
    ("ff.net.2", "img_mlp.2"),
    ("ff_context.net.0.proj", "txt_mlp.0"),
    ("ff_context.net.2", "txt_mlp.2"),
    ("attn.to_out.0", "img_attn.proj"),
    ("attn.to_add_out", "txt_attn.proj"),
]
SINGLE_RENAMES = [
    ("norm.linear", "modulation.lin"),
    ("attn.norm_q", "norm.query_norm"),
    ("attn.norm_k", "norm.key_norm"),
    ("proj_out", "linear2"),
]
TOP_RENAMES = [
    ("time_text_embed.timestep_embedder.linear_1", "time_in.in_layer"),
    ("time_text_embed.timestep_embedder.linear_2", "time_in.out_layer"),
    ("time_text_embed.text_embedder.linear_1", "vector_in.in_layer"),
    ("time_text_embed.text_embedder.linear_2", "vector_in.out_layer"),
    ("time_text_embed.guidance_embedder.linear_1", "guidance_in.in_layer"),
    ("time_text_embed.guidance_embedder.linear_2", "guidance_in.out_layer"),
    ("context_embedder", "txt_in"),
    ("x_embedder", "img_in"),
    ("proj_out", "final_layer.linear"),
]
QKV = {"img_attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v")}
QKV_CONTEXT = {"txt_attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj")}
NORM_OUT = ("norm_out.linear", "final_layer.adaLN_modulation.1")  # shift, scale -> scale, shift


def _blocks(shapes: Shapes, kind: str) -> list[int]:
    return sorted({int(m.group(1)) for name in shapes if (m := re.match(rf"{kind}\.(\d+)\.", name))})


def rope_axes(head_width: int) -> tuple[int, int, int]:
    """The rotary split of a head, which shapes cannot tell: FLUX.1's (16, 56, 56) for 128-wide heads,
    the same proportions (1/8, 7/16, 7/16) for other widths where those are even."""
    if head_width == FLUX_HEAD_WIDTH:
        return FLUX_ROPE_AXES
    axes = (head_width // 8, head_width * 7 // 16, head_width * 7 // 16)
    if sum(axes) != head_width or any(axis % 2 for axis in axes):
        raise LayoutError(f"its {head_width}-wide attention heads have no known rotary split")
    return axes


def flux_transformer_config(shapes: Shapes) -> dict[str, Any]:
    """diffusers ``FluxTransformer2DModel`` settings for BFL-layout ``shapes`` (prefix removed)."""
    try:
        inner, in_channels = shapes["img_in.weight"]
        head_width = shapes["double_blocks.0.img_attn.norm.query_norm.scale"][0]
        joint = shapes["txt_in.weight"][1]
        pooled = shapes["vector_in.in_layer.weight"][1]
        out_channels = shapes["final_layer.linear.weight"][0]
        mlp = shapes["double_blocks.0.img_mlp.0.weight"][0]
    except (KeyError, ValueError) as error:
        raise LayoutError(f"it lacks a FLUX transformer tensor ({error})") from None
    if mlp != MLP_RATIO * inner:
        raise LayoutError(f"its MLP is {mlp} wide, not {MLP_RATIO}× its width {inner} as FLUX.1's")
    return {
        "patch_size": 1,
        "in_channels": in_channels,
        "out_channels": out_channels,
        "num_layers": len(_blocks(shapes, "double_blocks")),
        "num_single_layers": len(_blocks(shapes, "single_blocks")),
        "attention_head_dim": head_width,
        "num_attention_heads": inner // head_width,
        "joint_attention_dim": joint,
        "pooled_projection_dim": pooled,
        "guidance_embeds": "guidance_in.in_layer.weight" in shapes,
        "axes_dims_rope": list(rope_axes(head_width)),
    }


def _swap_halves(tensor: Any) -> Any:
    import torch

    first, second = tensor.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def convert_flux_transformer(original: dict[str, Any]) -> dict[str, Any]:
    """BFL-layout tensors (prefix removed) renamed and split into diffusers' layout. Every tensor
    must be used: a leftover means a layout this does not know, and raises LayoutError."""
    import torch

    left = dict(original)
    out: dict[str, Any] = {}

    def move(new: str, old: str, optional: bool = False) -> None:
        moved = False
        for old_suffix, new_suffix in ((".weight", ".weight"), (".bias", ".bias"), (".scale", ".weight")):
            if old + old_suffix in left:
                out[new + new_suffix] = left.pop(old + old_suffix)
                moved = True
        if not moved and not optional:
            raise LayoutError(f"it lacks {old}.weight")

    for new, old in TOP_RENAMES:
        move(new, old, optional=old.startswith("guidance_in"))
    inner = out["x_embedder.weight"].shape[0]
    for i in _blocks(original, "double_blocks"):
        block, new_block = f"double_blocks.{i}.", f"transformer_blocks.{i}."
        for new, old in DOUBLE_RENAMES:
            move(new_block + new, block + old)
        for table in (QKV, QKV_CONTEXT):
            for old, names in table.items():
                for suffix in (".weight", ".bias"):
                    parts = torch.chunk(left.pop(block + old + suffix), 3, dim=0)
                    for name, part in zip(names, parts, strict=True):
                        out[new_block + name + suffix] = part
    for i in _blocks(original, "single_blocks"):
        block, new_block = f"single_blocks.{i}.", f"single_transformer_blocks.{i}."
        for new, old in SINGLE_RENAMES:
            move(new_block + new, block + old)
        for suffix in (".weight", ".bias"):
            fused = left.pop(block + "linear1" + suffix)
            sizes = (inner, inner, inner, fused.shape[0] - 3 * inner)
            names = ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")
            for name, part in zip(names, torch.split(fused, sizes, dim=0), strict=True):
                out[new_block + name + suffix] = part
    for suffix in (".weight", ".bias"):
        out[NORM_OUT[0] + suffix] = _swap_halves(left.pop(NORM_OUT[1] + suffix))
    if left:
        shown = ", ".join(sorted(left)[:3])
        raise LayoutError(f"it holds tensors no FLUX.1 transformer has ({shown})")
    return out
