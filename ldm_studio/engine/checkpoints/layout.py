"""Architecture dimensions read from tensor shapes in the original (CompVis / A1111) key layout.

Pure functions over ``{name: shape}`` tables: nothing here touches a weight. What shapes cannot say
(attention head counts, group-norm groups) follows each family's convention; see ``configs``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Shapes = dict[str, tuple[int, ...]]


SD1_UNET_HEADS = 8
HEAD_WIDTH = 64


def unet_heads(family: str, channels: tuple[int, ...]) -> int | list[int]:
    """Attention heads per UNet level, which shapes cannot tell: SD 1.x uses 8 per block,
    SD 2.x and SDXL heads 64 channels wide (in diffusers' ``attention_head_dim`` form)."""
    if family == "sd1":
        return SD1_UNET_HEADS
    return [max(1, width // HEAD_WIDTH) for width in channels]


class LayoutError(ValueError):
    """The tensors do not form an architecture diffusers can rebuild; the message says why."""


@dataclass(frozen=True)
class UNetLayout:
    in_channels: int
    out_channels: int
    block_out_channels: tuple[int, ...]
    layers_per_block: int
    down_attention: tuple[bool, ...]  # per resolution level, outermost first
    up_attention: tuple[bool, ...]  # per up level, innermost first (diffusers order)
    transformer_depth: tuple[int, ...]  # transformer blocks per level (diffusers' down order)
    has_mid_block: bool
    context_dim: int | None
    linear_projection: bool
    addition_embed_dim: int | None = None  # SDXL: width of the pooled-text + size embedding input
    attention_heads: tuple[int, ...] = ()  # per level; from the config, or the family's convention

    def describe(self) -> str:
        levels = "/".join(str(c) for c in self.block_out_channels)
        attention = ",".join("A" if a else "-" for a in self.down_attention)
        depth = (
            ""
            if set(self.transformer_depth) == {1}
            else f", transformer depth {list(self.transformer_depth)}"
        )
        heads = f", heads {'/'.join(map(str, self.attention_heads))}" if self.attention_heads else ""
        return (
            f"channels {levels}, {self.layers_per_block} layer(s) per block, attention [{attention}]"
            f"{depth}{heads}, mid block {'yes' if self.has_mid_block else 'no'}, context {self.context_dim}"
        )


@dataclass(frozen=True)
class TextEncoderLayout:
    kind: str  # "clip" (OpenAI CLIP in transformers layout) or "open_clip"
    hidden_size: int
    num_layers: int  # transformer blocks stored in the file
    intermediate_size: int
    vocab_size: int
    max_positions: int
    projection_dim: int | None = None

    def describe(self) -> str:
        return f"{self.kind} width {self.hidden_size}, {self.num_layers} layers"


@dataclass(frozen=True)
class VaeLayout:
    in_channels: int
    out_channels: int
    block_out_channels: tuple[int, ...]
    layers_per_block: int
    latent_channels: int
    use_quant_conv: bool
    mid_attention: bool

    def describe(self) -> str:
        return (
            f"channels {'/'.join(map(str, self.block_out_channels))}, {self.latent_channels} latent channels"
        )


def _indices(shapes: Shapes, pattern: str) -> list[int]:
    compiled = re.compile(pattern)
    return sorted({int(match.group(1)) for name in shapes if (match := compiled.match(name))})


def _need(shapes: Shapes, name: str) -> tuple[int, ...]:
    shape = shapes.get(name)
    if shape is None:
        raise LayoutError(f"the tensor {name} is missing")
    return shape


def _depth(shapes: Shapes, block: str) -> int:
    return len(_indices(shapes, rf"{re.escape(block)}\.transformer_blocks\.(\d+)\."))


@dataclass(frozen=True)
class _Block:
    channels: int
    attention: bool
    depth: int


def _res_block(shapes: Shapes, block: str) -> _Block:
    channels = _need(shapes, f"{block}.0.out_layers.3.weight")[0]
    attention = f"{block}.1.proj_in.weight" in shapes
    return _Block(channels, attention, _depth(shapes, f"{block}.1") if attention else 0)


def unet_layout(shapes: Shapes) -> UNetLayout:
    """Dimensions of an LDM UNet (keys without the ``model.diffusion_model.`` prefix)."""
    conv_in = _need(shapes, "input_blocks.0.0.weight")
    conv_out = _need(shapes, "out.2.weight")
    down_levels: list[list[_Block]] = [[]]
    for index in _indices(shapes, r"input_blocks\.(\d+)\.")[1:]:
        block = f"input_blocks.{index}"
        if f"{block}.0.op.weight" in shapes:
            down_levels.append([])
        elif f"{block}.0.in_layers.2.weight" in shapes:
            down_levels[-1].append(_res_block(shapes, block))
        else:
            raise LayoutError(f"input block {index} is neither a residual block nor a downsampler")
    up_levels: list[list[_Block]] = [[]]
    for index in _indices(shapes, r"output_blocks\.(\d+)\."):
        block = f"output_blocks.{index}"
        if f"{block}.0.in_layers.2.weight" not in shapes:
            raise LayoutError(f"output block {index} has no residual block")
        up_levels[-1].append(_res_block(shapes, block))
        if f"{block}.1.conv.weight" in shapes or f"{block}.2.conv.weight" in shapes:
            up_levels.append([])
    if not down_levels[-1] or not up_levels[-1] or len(down_levels) != len(up_levels):
        raise LayoutError(
            f"the UNet has {len(down_levels)} down and {len(up_levels)} up resolution levels; "
            "they must pair up"
        )
    layers = {len(level) for level in down_levels}
    if len(layers) != 1:
        raise LayoutError(f"the UNet's levels have different layer counts {sorted(layers)}")
    layers_per_block = layers.pop()
    if any(len(level) != layers_per_block + 1 for level in up_levels):
        raise LayoutError("each up level must have one residual block more than its down level")
    channels = tuple(_uniform(level, "channels") for level in down_levels)
    up_channels = tuple(_uniform(level, "channels") for level in up_levels)
    if up_channels != channels[::-1]:
        raise LayoutError(f"up levels {list(up_channels)} do not mirror down levels {list(channels)}")
    down_attention = tuple(_uniform(level, "attention") for level in down_levels)
    up_attention = tuple(_uniform(level, "attention") for level in up_levels)
    down_depth = [_uniform(level, "depth") for level in down_levels]
    up_depth = [_uniform(level, "depth") for level in up_levels][::-1]  # back to down order
    has_mid = any(name.startswith("middle_block.") for name in shapes)
    mid_depth = _depth(shapes, "middle_block.1") if has_mid else 0
    depth = _transformer_depth(down_depth, up_depth, mid_depth)
    context_dims = {shape[1] for name, shape in shapes.items() if name.endswith("attn2.to_k.weight")}
    if len(context_dims) > 1:
        raise LayoutError(
            f"the UNet's cross-attention layers disagree on the text width {sorted(context_dims)}"
        )
    proj_in = [shape for name, shape in shapes.items() if name.endswith(".proj_in.weight")]
    label_emb = shapes.get("label_emb.0.0.weight")
    return UNetLayout(
        in_channels=conv_in[1],
        out_channels=conv_out[0],
        block_out_channels=channels,
        layers_per_block=layers_per_block,
        down_attention=down_attention,
        up_attention=up_attention,
        transformer_depth=depth,
        has_mid_block=has_mid,
        context_dim=context_dims.pop() if context_dims else None,
        linear_projection=bool(proj_in) and len(proj_in[0]) == 2,
        addition_embed_dim=label_emb[1] if label_emb else None,
    )


def _uniform(level: list[_Block], attribute: str) -> int | bool:
    values = {getattr(block, attribute) for block in level}
    if len(values) != 1:
        raise LayoutError(f"blocks within one UNet level differ in {attribute}: {sorted(values)}")
    return values.pop()


def _transformer_depth(down: list[int], up: list[int], mid: int) -> tuple[int, ...]:
    """One depth per level, as diffusers wants it: shared by a level's down and up blocks and, for
    the innermost level, by the mid block."""
    depth = []
    for level, (down_depth, up_depth) in enumerate(zip(down, up, strict=True)):
        if down_depth and up_depth and down_depth != up_depth:
            raise LayoutError(
                f"level {level} has {down_depth} transformer blocks going down, {up_depth} going up"
            )
        depth.append(down_depth or up_depth or 1)
    if mid:
        if down[-1] or up[-1]:
            if depth[-1] != mid:
                raise LayoutError(
                    f"the mid block's {mid} transformer blocks differ from the innermost level's"
                )
        else:
            depth[-1] = mid
    return tuple(depth)


def clip_text_layout(shapes: Shapes) -> TextEncoderLayout:
    """OpenAI CLIP text model in transformers naming (SD 1.x, SDXL's first encoder)."""
    shapes = {name.removeprefix("text_model."): shape for name, shape in shapes.items()}
    tokens = _need(shapes, "embeddings.token_embedding.weight")
    positions = _need(shapes, "embeddings.position_embedding.weight")
    layers = _indices(shapes, r"encoder\.layers\.(\d+)\.")
    if not layers:
        raise LayoutError("the CLIP text encoder has no transformer layers")
    projection = shapes.get("text_projection.weight")
    return TextEncoderLayout(
        kind="clip",
        hidden_size=tokens[1],
        num_layers=len(layers),
        intermediate_size=_need(shapes, "encoder.layers.0.mlp.fc1.weight")[0],
        vocab_size=tokens[0],
        max_positions=positions[0],
        projection_dim=projection[0] if projection else None,
    )


def open_clip_text_layout(shapes: Shapes) -> TextEncoderLayout:
    """OpenCLIP text tower (SD 2.x, SDXL's second encoder)."""
    tokens = _need(shapes, "token_embedding.weight")
    positions = _need(shapes, "positional_embedding")
    layers = _indices(shapes, r"transformer\.resblocks\.(\d+)\.")
    if not layers:
        raise LayoutError("the OpenCLIP text encoder has no transformer layers")
    projection = shapes.get("text_projection")
    return TextEncoderLayout(
        kind="open_clip",
        hidden_size=tokens[1],
        num_layers=len(layers),
        intermediate_size=_need(shapes, "transformer.resblocks.0.mlp.c_fc.weight")[0],
        vocab_size=tokens[0],
        max_positions=positions[0],
        projection_dim=projection[1] if projection and len(projection) == 2 else None,
    )


def vae_layout(shapes: Shapes) -> VaeLayout:
    """An AutoencoderKL in the original layout (``encoder.down.0.block.0...``) or diffusers layout."""
    diffusers_names = any(name.startswith("encoder.down_blocks.") for name in shapes)
    down, block = ("down_blocks", "resnets") if diffusers_names else ("down", "block")
    levels = _indices(shapes, rf"encoder\.{down}\.(\d+)\.")
    if not levels:
        raise LayoutError("the VAE encoder has no levels")
    channels = tuple(_need(shapes, f"encoder.{down}.{level}.{block}.0.conv2.weight")[0] for level in levels)
    layers = len(_indices(shapes, rf"encoder\.{down}\.0\.{block}\.(\d+)\."))
    encoder_out = _need(shapes, "encoder.conv_out.weight")
    mid_attention = any(
        name.startswith(("encoder.mid.attn_1.", "encoder.mid_block.attentions.")) for name in shapes
    )
    return VaeLayout(
        in_channels=_need(shapes, "encoder.conv_in.weight")[1],
        out_channels=_need(shapes, "decoder.conv_out.weight")[0],
        block_out_channels=channels,
        layers_per_block=layers,
        latent_channels=encoder_out[0] // 2,  # the encoder outputs mean and log-variance
        use_quant_conv="quant_conv.weight" in shapes,
        mid_attention=mid_attention,
    )
