"""SD 3 / SD 3.5 single files, loaded offline: Stability's files (``model.diffusion_model.*``, the VAE
as ``first_stage_model.*``, text encoders inside or beside the file as ``clip_l`` / ``clip_g`` /
``t5xxl`` safetensors) and ComfyUI's all-in-one files. Nothing comes from a hub.

As for FLUX (``flow_single_file``), each part is built on the meta device from a shipped config
(resources/configs/sd3, sd3.5-medium, sd3.5-large) refitted to the file's shapes and takes its
tensors as they are. The keys are converted by diffusers' own single-file converters. T5 is
optional (SD 3 was trained to run without it); CLIP-L, CLIP-G and the VAE are not. SD 3's CLIP-L
carries no projection: its pooled output is used as it is (the identity, as diffusers does).
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

from ldm_studio.engine.checkpoints import flow_configs, fp8_weights
from ldm_studio.engine.checkpoints.configs import text_config
from ldm_studio.engine.checkpoints.flow_parts import (
    NO_T5_TOKENIZER,
    PartSource,
    check_kind,
    clip_tokenizer,
    label,
    part_table,
    t5_tokenizer_source,
)
from ldm_studio.engine.checkpoints.flow_single_file import (
    _assign,
    _check_vocabulary,
    _tensors,
    given_parts,
    parts_status,
)
from ldm_studio.engine.checkpoints.layout import LayoutError, clip_text_layout
from ldm_studio.engine.checkpoints.tensors import read_safetensors_header
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.flow_files import _transformer_keys, describe_flow_file
from ldm_studio.paths import resource

log = logging.getLogger(__name__)

CONFIG_FOLDERS = {"SD 3": "sd3", "SD 3.5 Medium": "sd3.5-medium", "SD 3.5 Large": "sd3.5-large"}
HEAD_WIDTH = 64  # every published SD 3.x transformer; shapes cannot tell the head count
NO_T5_NOTE = (
    "without T5 (prompts follow less closely): put t5xxl_fp16.safetensors beside it or choose it "
    "with --part t5xxl=PATH"
)
Shapes = dict[str, tuple[int, ...]]


def sd3_config_folder(variant: str) -> Path:
    folder = resource("configs", CONFIG_FOLDERS.get(variant, "sd3"))
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"LDM Studio's SD 3 config folder is missing ({folder})")
    return folder


def t5_note(sources: dict) -> str:
    return "" if "t5xxl" in sources else NO_T5_NOTE


def transformer_config(folder: Path, shapes: Shapes) -> dict[str, Any]:
    """The shipped transformer config refitted to Stability-layout shapes (prefix removed)."""
    try:
        width, in_channels, patch, _ = shapes["x_embedder.proj.weight"]
        caption, joint = shapes["context_embedder.weight"]
        pooled = shapes["y_embedder.mlp.0.weight"][1]
        out = shapes["final_layer.linear.weight"][0] // (patch * patch)
        positions = shapes["pos_embed"][1]
    except (KeyError, ValueError) as error:
        raise LayoutError(f"it lacks an SD 3 transformer tensor ({error})") from None
    side = math.isqrt(positions)
    if side * side != positions or width % HEAD_WIDTH:
        raise LayoutError(f"its transformer is {width} wide with {positions} positions, not an SD 3 shape")
    layers = {int(m.group(1)) for name in shapes if (m := re.match(r"joint_blocks\.(\d+)\.", name))}
    dual = sorted(
        {
            int(m.group(1))
            for name in shapes
            if (m := re.match(r"joint_blocks\.(\d+)\.x_block\.attn2\.", name))
        }
    )
    # SD 3.5 RMS-normalises q and k (weights only); SD 3 does not normalise them
    qk_norm = "rms_norm" if any(".attn.ln_q." in name for name in shapes) else None
    return {
        **flow_configs.shipped(folder, "transformer"),
        "patch_size": patch,
        "in_channels": in_channels,
        "out_channels": out,
        "num_layers": len(layers),
        "attention_head_dim": HEAD_WIDTH,
        "num_attention_heads": width // HEAD_WIDTH,
        "joint_attention_dim": joint,
        "caption_projection_dim": caption,
        "pooled_projection_dim": pooled,
        "pos_embed_max_size": side,
        "dual_attention_layers": dual,
        "qk_norm": qk_norm,
    }


def _t5_tokenizer(given: dict[str, Path]) -> Any:
    from ldm_studio.engine.t5_tokenizer import load_t5_tokenizer

    chosen = given.get("tokenizers")
    if chosen is not None and any(
        (chosen / "tokenizer_3" / n).is_file() for n in ("tokenizer.json", "spiece.model")
    ):
        return load_t5_tokenizer(chosen / "tokenizer_3")
    # an SD 3 folder's tokenizer_2 is CLIP-G's: only an explicit T5 tokenizer folder, else the shipped one
    source = t5_tokenizer_source({k: v for k, v in given.items() if k == "t5_tokenizer"})
    if source is None:
        raise ModelLoadError(NO_T5_TOKENIZER)
    return load_t5_tokenizer(source)


def _clip(
    source: PartSource, shapes: Shapes, folder: Path, component: str, tokenizer: Any, dtype: Any
) -> Any:
    """A ``CLIPTextModelWithProjection``; CLIP-L's missing projection becomes the identity."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    layout = clip_text_layout(shapes)  # with CLIP-G's projection width, when there is one
    config = text_config(flow_configs.shipped(folder, component), layout, layout.num_layers)
    config.update(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    state = {}
    for key, tensor in _tensors(source, dtype).items():
        name = (
            key if key.startswith("text_model.") or key == "text_projection.weight" else f"text_model.{key}"
        )
        state[name] = tensor
    state.pop("text_model.embeddings.position_ids", None)
    if component == "text_encoder":
        config["projection_dim"] = layout.hidden_size
        state["text_projection.weight"] = torch.eye(layout.hidden_size, dtype=dtype)
    model = _assign(
        CLIPTextModelWithProjection, CLIPTextConfig(**config), state, source.file.name, strict=False
    )
    return model


def load_sd3_single_file(
    path: Path, torch_dtype: Any = None, chosen_parts: dict[str, Any] | None = None
) -> Any:
    """A ``StableDiffusion3Pipeline`` from an SD 3.x single file and its parts; ModelLoadError with a
    sentence for a missing or wrong part."""
    import diffusers
    import torch
    from diffusers.loaders.single_file_utils import (
        convert_ldm_vae_checkpoint,
        convert_sd3_transformer_checkpoint_to_diffusers,
    )
    from transformers import T5Config, T5EncoderModel

    dtype = torch_dtype or torch.float32
    path = Path(path).expanduser()
    table = read_safetensors_header(path)
    sources, problem = parts_status(path, table, chosen_parts, "sd3")
    if problem:
        raise ModelLoadError(problem)
    flow = describe_flow_file(table.shapes)
    assert flow is not None  # parts_status checked it
    folder = sd3_config_folder(flow.variant)
    given = given_parts(path, chosen_parts)
    prefix, _ = _transformer_keys(table.shapes)
    shapes = {part: part_table(source, part) for part, source in sources.items()}
    for part, source in sources.items():
        check_kind(part, source, shapes[part], "sd3")
    if "t5xxl" not in sources:
        log.warning("%s loads %s", path.name, NO_T5_NOTE)
    try:
        skip = tuple(source.prefix for source in sources.values() if source.origin == "inside")
        original = _tensors(
            PartSource(path, prefix, "inside"), dtype, skip if prefix == "" else (), keep_fp8=True
        )
        config = transformer_config(folder, {k: tuple(v.shape) for k, v in original.items()})
        transformer = _assign(
            diffusers.SD3Transformer2DModel,
            config,
            convert_sd3_transformer_checkpoint_to_diffusers(original),
            f"{path.name}'s transformer",
        )
        fp8_weights.keep_in_fp8(transformer, dtype)
        tokenizer, tokenizer_2 = clip_tokenizer(given, folder), clip_tokenizer(given, folder, "tokenizer_2")
        encoders = []
        for part, component, part_tokenizer in (
            ("clip_l", "text_encoder", tokenizer),
            ("clip_g", "text_encoder_2", tokenizer_2),
        ):
            rows = {k.removeprefix("text_model."): v for k, v in shapes[part].items()}
            _check_vocabulary(
                part_tokenizer, rows["embeddings.token_embedding.weight"][0], part, sources[part]
            )
            encoders.append(_clip(sources[part], shapes[part], folder, component, part_tokenizer, dtype))
        text_encoder_3 = tokenizer_3 = None
        if "t5xxl" in sources:
            tokenizer_3 = _t5_tokenizer(given)
            _check_vocabulary(tokenizer_3, shapes["t5xxl"]["shared.weight"][0], "t5xxl", sources["t5xxl"])
            t5_state = _tensors(sources["t5xxl"], dtype, keep_fp8=True)
            t5_state.setdefault("encoder.embed_tokens.weight", t5_state["shared.weight"])  # tied in T5
            # T5-XXL is FLUX's encoder too: its shipped config is the one refitted here
            t5_config = T5Config(**flow_configs.t5(flow_configs.flux_config_folder(True), shapes["t5xxl"]))
            text_encoder_3 = _assign(T5EncoderModel, t5_config, t5_state, sources["t5xxl"].file.name)
            fp8_weights.keep_in_fp8(text_encoder_3, dtype)
        vae_config = flow_configs.vae(folder, shapes["vae"])
        vae_state = _tensors(sources["vae"], dtype)
        if not any(name.startswith("decoder.up_blocks.") for name in vae_state):  # not diffusers' own layout
            vae_state = convert_ldm_vae_checkpoint(vae_state, vae_config)
        vae = _assign(diffusers.AutoencoderKL, vae_config, vae_state, sources["vae"].file.name)
    except LayoutError as error:
        raise ModelLoadError(f"{path.name} cannot be loaded: {error}") from error
    _check_widths(path, sources, transformer, encoders, text_encoder_3, vae)
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(
        flow_configs.shipped(folder, "scheduler")
    )
    return diffusers.StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=scheduler,
        vae=vae,
        text_encoder=encoders[0],
        tokenizer=tokenizer,
        text_encoder_2=encoders[1],
        tokenizer_2=tokenizer_2,
        text_encoder_3=text_encoder_3,
        tokenizer_3=tokenizer_3,
    )


def _check_widths(path: Path, sources: dict, transformer: Any, encoders: list, t5: Any, vae: Any) -> None:
    config = transformer.config
    if vae.config.latent_channels != config.in_channels:
        raise ModelLoadError(
            f"{sources['vae'].file.name} makes {vae.config.latent_channels}-channel latents; "
            f"{path.name} needs {label('vae', 'sd3')}"
        )
    pooled = sum(encoder.config.projection_dim for encoder in encoders)
    hidden = sum(encoder.config.hidden_size for encoder in encoders)
    if pooled != config.pooled_projection_dim or hidden > config.joint_attention_dim:
        raise ModelLoadError(
            f"{sources['clip_l'].file.name} and {sources['clip_g'].file.name} are not "
            f"{label('clip_l')} and {label('clip_g')} (their widths do not fit {path.name})"
        )
    if t5 is not None and t5.config.d_model != config.joint_attention_dim:
        raise ModelLoadError(f"{sources['t5xxl'].file.name} is not {label('t5xxl')} (its width does not fit)")
