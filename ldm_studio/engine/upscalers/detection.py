"""What an upscaler file is, told from its tensor names and shapes alone (no weights needed).

ESRGAN-family and Real-ESRGAN compact files are recognised fully (architecture, scale and every
hyper-parameter), because LDM Studio runs them itself. Other architectures are named from one
characteristic tensor each, so the library can say what a file is and that it needs ``spandrel``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

Shapes = dict[str, tuple[int, ...]]

ESRGAN = "ESRGAN"
COMPACT = "Real-ESRGAN compact"
BUILTIN_ARCHITECTURES = (ESRGAN, COMPACT)

# One tensor that only this architecture has (checked in this order: HAT and Swin2SR also carry
# SwinIR's attention tables, so they come first).
SIGNATURES = (
    ("HAT", "layers.0.residual_group.blocks.0.conv_block.cab.0.weight"),
    ("ATD", "layers.0.residual_group.td"),
    ("Swin2SR", "layers.0.residual_group.blocks.0.attn.logit_scale"),
    ("SwinIR", "layers.0.residual_group.blocks.0.attn.relative_position_bias_table"),
    ("DRCT", "layers.0.swin1.attn.relative_position_bias_table"),
    ("DAT", "before_RG.1.weight"),
    ("SPAN", "block_1.c1_r.sk.weight"),
    ("OmniSR", "residual_layer.0.residual_layer.0.layer.0.fn.0.weight"),
    ("PLKSR", "feats.1.refine.weight"),
    ("RealCUGAN", "unet1.conv1.conv.0.weight"),
)

OLD_BLOCK_KEY = re.compile(r"^model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$")
OLD_CONV_KEY = re.compile(r"^model\.(\d+)\.(weight|bias)$")
OLD_BODY_CONV_KEY = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")
NEW_BLOCK_KEY = re.compile(r"^body\.(\d+)\.rdb[123]\.")
NEW_UPCONV_KEY = re.compile(r"^conv_up(\d+)\.(weight|bias)$")
COMPACT_KEY = re.compile(r"^body\.(\d+)\.weight$")


@dataclass(frozen=True)
class Detected:
    """What the tensors say: ``options`` are the built-in network's arguments (empty otherwise)."""

    architecture: str  # "ESRGAN", "Real-ESRGAN compact", "SwinIR"… or "unknown"
    scale: int | None
    options: dict[str, Any] = field(default_factory=dict)
    original_keys: bool = False  # ESRGAN's first release names its tensors model.0, model.1.sub…

    @property
    def builtin(self) -> bool:
        return self.architecture in BUILTIN_ARCHITECTURES


def detect(shapes: Shapes) -> Detected:
    if "model.0.weight" in shapes and any(OLD_BLOCK_KEY.match(name) for name in shapes):
        return _old_esrgan(shapes)
    if "conv_first.weight" in shapes and "body.0.rdb1.conv1.weight" in shapes:
        return _new_esrgan(shapes)
    if _is_compact(shapes):
        return _compact(shapes)
    for architecture, key in SIGNATURES:
        if key in shapes:
            return Detected(architecture, None)
    return Detected("unknown", None)


def _unshuffle_factor(conv_in: int) -> tuple[int, int]:
    """(image channels, unshuffle factor) from the first convolution's input channels."""
    for factor in (4, 2):
        if conv_in % (factor * factor) == 0 and conv_in // (factor * factor) in (1, 3):
            return conv_in // (factor * factor), factor
    return conv_in, 1


def _new_esrgan(shapes: Shapes) -> Detected:
    in_channels, unshuffle = _unshuffle_factor(shapes["conv_first.weight"][1])
    upsamples = len({int(m.group(1)) for name in shapes if (m := NEW_UPCONV_KEY.match(name))})
    options = {
        "in_channels": in_channels,
        "out_channels": shapes["conv_last.weight"][0],
        "features": shapes["conv_first.weight"][0],
        "growth": shapes["body.0.rdb1.conv1.weight"][0],
        "blocks": len({int(m.group(1)) for name in shapes if (m := NEW_BLOCK_KEY.match(name))}),
        "upsamples": upsamples,
        "unshuffle": unshuffle,
    }
    return Detected(ESRGAN, 2**upsamples // unshuffle, options)


def _old_layout(shapes: Shapes) -> tuple[int, list[int]]:
    """(blocks, indices of the convolutions after the body) of an original-layout ESRGAN."""
    blocks = {int(m.group(1)) for name in shapes if (m := OLD_BLOCK_KEY.match(name))}
    tail = sorted(
        {int(m.group(1)) for name in shapes if (m := OLD_CONV_KEY.match(name)) and m.group(1) != "0"}
    )
    return len(blocks), tail


def _old_esrgan(shapes: Shapes) -> Detected:
    blocks, tail = _old_layout(shapes)
    if len(tail) < 2 or not any(OLD_BODY_CONV_KEY.match(name) for name in shapes):
        return Detected(ESRGAN, None)  # a variant (plus, SPSR…) this module does not build
    upsamples = len(tail) - 2  # the last two are the high-resolution convolutions
    in_channels, unshuffle = _unshuffle_factor(shapes["model.0.weight"][1])
    options = {
        "in_channels": in_channels,
        "out_channels": shapes[f"model.{tail[-1]}.weight"][0],
        "features": shapes["model.0.weight"][0],
        "growth": shapes["model.1.sub.0.RDB1.conv1.0.weight"][0],
        "blocks": blocks,
        "upsamples": upsamples,
        "unshuffle": unshuffle,
    }
    return Detected(ESRGAN, 2**upsamples // unshuffle, options, original_keys=True)


def _is_compact(shapes: Shapes) -> bool:
    first, prelu = shapes.get("body.0.weight"), shapes.get("body.1.weight")
    return first is not None and len(first) == 4 and prelu is not None and len(prelu) == 1


def _compact(shapes: Shapes) -> Detected:
    last = max(int(m.group(1)) for name in shapes if (m := COMPACT_KEY.match(name)))
    first = shapes["body.0.weight"]
    in_channels, features = first[1], first[0]
    scale = math.isqrt(shapes[f"body.{last}.weight"][0] // in_channels)
    if scale * scale * in_channels != shapes[f"body.{last}.weight"][0]:
        return Detected(COMPACT, None)
    options = {
        "in_channels": in_channels,
        "out_channels": in_channels,
        "features": features,
        "convs": (last - 2) // 2,
        "scale": scale,
    }
    return Detected(COMPACT, scale, options)


def builtin_state_dict(detected: Detected, tensors: dict[str, Any]) -> dict[str, Any]:
    """The file's tensors under the names of ``networks``' modules."""
    if detected.architecture == COMPACT:
        return dict(tensors)
    if not detected.original_keys:
        return {_new_name(name): value for name, value in tensors.items()}
    _, tail = _old_layout({name: tuple(value.shape) for name, value in tensors.items()})
    tail_names = [f"conv_ups.{n}" for n in range(len(tail) - 2)] + ["conv_hr", "conv_last"]
    renamed_tail = dict(zip(tail, tail_names, strict=True))
    renamed: dict[str, Any] = {}
    for name, value in tensors.items():
        if block := OLD_BLOCK_KEY.match(name):
            index, rdb, conv, kind = block.groups()
            renamed[f"body.{index}.rdb{rdb}.conv{conv}.{kind}"] = value
        elif OLD_BODY_CONV_KEY.match(name):
            renamed[f"conv_body.{name.rsplit('.', 1)[1]}"] = value
        elif conv := OLD_CONV_KEY.match(name):
            index, kind = int(conv.group(1)), conv.group(2)
            renamed[f"{'conv_first' if index == 0 else renamed_tail[index]}.{kind}"] = value
        else:
            renamed[name] = value  # left for load_state_dict to report
    return renamed


def _new_name(name: str) -> str:
    if match := NEW_UPCONV_KEY.match(name):
        return f"conv_ups.{int(match.group(1)) - 1}.{match.group(2)}"
    return name
