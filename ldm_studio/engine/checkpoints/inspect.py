"""``inspect_model``: recognise a checkpoint file or diffusers folder from names and shapes alone.

Never from the file name (that is only a hint for the prediction type, which keys cannot tell)
and never by reading weights: a safetensors header, or a memory-mapped ``weights_only`` pickle.
Single files are told apart here, by their tensor names and shapes; diffusers folders in ``folders``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from ldm_studio.engine.catalog import GGUF_SUFFIX, PICKLE_SUFFIXES, SAFETENSORS_SUFFIX, human_size
from ldm_studio.engine.checkpoints import layout as layouts
from ldm_studio.engine.checkpoints.folders import folder_family as folder_family  # re-exported
from ldm_studio.engine.checkpoints.folders import inspect_folder
from ldm_studio.engine.checkpoints.info import SUPPORTED, ModelInfo
from ldm_studio.engine.checkpoints.layout import (
    LayoutError,
    TextEncoderLayout,
    UNetLayout,
    VaeLayout,
    unet_heads,
)
from ldm_studio.engine.checkpoints.pickles import pickle_tensor_table, sniff_format
from ldm_studio.engine.checkpoints.prediction import guess_prediction
from ldm_studio.engine.checkpoints.tensors import TensorTable, read_safetensors_header
from ldm_studio.engine.errors import ModelLoadError

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIXES = ("first_stage_model.", "vae.")
SD1_TEXT_PREFIX = "cond_stage_model.transformer."
SD2_TEXT_PREFIX = "cond_stage_model.model."
SDXL_TEXT_PREFIXES = ("conditioner.embedders.0.transformer.", "conditioner.embedders.1.model.")
SDXL_REFINER_TEXT_PREFIX = "conditioner.embedders.0.model."
CLIP_VOCAB_SIZE = 49408
NO_VAE_REASON = "the file holds no VAE: choose a VAE file in the model's settings"
NATIVE_SIZES = {"sd1": 512, "sd2": 512, "sdxl": 1024}
OTHER_INPUT_CHANNELS = {
    9: "an inpainting model (9 input channels)",
    8: "an instruct-pix2pix model (8 input channels)",
    5: "a depth-conditioned model (5 input channels)",
    7: "an upscaler (7 input channels)",
}


def inspect_model(path: Path | str, chosen_parts: dict[str, Any] | None = None) -> ModelInfo:
    """Describe a model file or folder; raise ModelLoadError when it is damaged, unsafe or unreadable.

    A readable file of an unsupported kind is not an error: it comes back with ``loadable=False``
    and a ``reason`` that says what was found and what is supported. ``chosen_parts``: an SD 3 /
    FLUX single file's parts given for this load (``--part``), beside those remembered or found.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"{path} does not exist")
    try:
        if path.is_dir():
            return inspect_folder(path)
        table, file_type = read_tensor_table(path)
        return describe_tensors(path, table, file_type, chosen_parts)
    except OSError as error:  # permissions, a disk that went away...
        raise ModelLoadError(f"{path.name} cannot be read: {error.strerror or error}") from error


def read_tensor_table(path: Path) -> tuple[TensorTable, str]:
    """Names and shapes of a checkpoint file's tensors, and its type ("safetensors", "gguf" or "ckpt")."""
    if not path.is_file():
        raise ModelLoadError(f"{path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix == SAFETENSORS_SUFFIX:
        if path.stat().st_size and sniff_format(path) in ("zip", "pickle"):
            raise ModelLoadError(
                f"{path.name} is a pickled checkpoint with a .safetensors name; rename it to .ckpt"
            )
        return read_safetensors_header(path), "safetensors"
    if suffix in PICKLE_SUFFIXES:
        return pickle_tensor_table(path), "ckpt"
    if suffix == GGUF_SUFFIX:
        from ldm_studio.engine.checkpoints.flow_gguf import read_gguf_table

        return read_gguf_table(path), "gguf"
    raise ModelLoadError(
        f"{path.name} is not a model file: open a .safetensors, .gguf or .ckpt checkpoint, "
        "or a diffusers model folder"
    )


def describe_tensors(
    path: Path, table: TensorTable, file_type: str, chosen_parts: dict[str, Any] | None = None
) -> ModelInfo:
    size = path.stat().st_size
    common: dict[str, Any] = {"path": path, "file_type": file_type, "file_size": size}
    common["weight_dtype"] = table.main_dtype()
    from ldm_studio.engine.flow_files import describe_flow_file  # SD 3 / FLUX: header-only detection

    flow = describe_flow_file(table.shapes)
    if file_type == "gguf":  # only FLUX.1 transformers (engine.checkpoints.gguf_info)
        from ldm_studio.engine.checkpoints.gguf_info import describe_gguf

        return describe_gguf(path, table, flow, common, chosen_parts)
    if flow is not None:
        parts = {"transformer": table.numel()}
        loadable, reason, notes, stored = False, flow.reason, (), {}
        if file_type == "safetensors":  # engine.checkpoints.flow_single_file / sd3_single_file
            from ldm_studio.engine.checkpoints.flow_single_file import (
                fp8_parts,
                part_parameters,
                parts_status,
            )

            sources, reason = parts_status(path, table, chosen_parts, flow.family)
            parts, unreadable = part_parameters(table, sources)
            reason = reason or unreadable
            stored = fp8_parts(table, sources, parts) if not unreadable else {}
            loadable = not reason
            if flow.family == "sd3" and loadable:  # SD 3 runs without T5, less faithfully
                from ldm_studio.engine.checkpoints.sd3_single_file import t5_note

                notes = tuple(note for note in [t5_note(sources)] if note)
            notes += tuple(f"{part} kept in fp8 ({human_size(size)})" for part, size in stored.items())
        return ModelInfo(
            family=flow.family, loadable=loadable, reason=reason, parameters=parts, notes=notes,
            stored_bytes=stored, **common,
        )  # fmt: skip
    if any(name.startswith(UNET_PREFIX) for name in table.shapes):
        return _describe_full_model(path, table, common)
    family, reason = _classify_other(table)
    vae = None
    if family == "vae":
        try:
            vae = layouts.vae_layout(_vae_shapes(table) or table.shapes)
        except LayoutError as error:
            reason = f"it looks like a VAE, but {error}"
    return ModelInfo(
        family=family, loadable=False, reason=reason, vae=vae, parameters={family: table.numel()}, **common
    )


def _describe_full_model(path: Path, table: TensorTable, common: dict[str, Any]) -> ModelInfo:
    unet_shapes = table.with_prefix(UNET_PREFIX)
    if any(
        re.match(r"(joint_blocks|double_blocks|single_blocks|layers)\.\d+\.", name) for name in unet_shapes
    ):
        return ModelInfo(
            family="unknown",
            loadable=False,
            reason="this is a diffusion transformer (SD3/Flux-style), not a latent-diffusion UNet; "
            + SUPPORTED,
            **common,
        )
    problems: list[str] = []
    unet: UNetLayout | None = None
    try:
        unet = layouts.unet_layout(unet_shapes)
    except LayoutError as error:
        problems.append(f"its UNet cannot be rebuilt ({error})")
    family, text_encoders, text_prefixes, text_problem = _text_encoders(table, unet)
    if text_problem:
        problems.append(text_problem)
    vae_shapes = table.with_prefix("first_stage_model.")
    vae: VaeLayout | None = None
    if vae_shapes:
        try:
            vae = layouts.vae_layout(vae_shapes)
        except LayoutError as error:
            problems.append(f"its VAE cannot be rebuilt ({error})")
    if unet is not None:
        problems.extend(_compatibility_problems(family, unet, text_encoders, vae))
        heads = unet_heads(family, unet.block_out_channels)
        per_level = tuple(heads) if isinstance(heads, list) else (heads,) * len(unet.block_out_channels)
        unet = dataclasses.replace(unet, attention_heads=per_level)
    parameters = {"unet": table.numel(UNET_PREFIX), "vae": table.numel("first_stage_model.")}
    for index, prefix in enumerate(text_prefixes):
        parameters["text_encoder" if index == 0 else f"text_encoder_{index + 1}"] = table.numel(prefix)
    notes = []
    if unet is not None and vae is None and not problems:
        problems.append(NO_VAE_REASON)
    guess = guess_prediction(path, family, table)
    if family == "sd2" and guess.prediction_type == "v_prediction":
        native = 768
    else:
        native = NATIVE_SIZES.get(family, 512)
    if any(name.startswith("model_ema.") for name in table.shapes):
        notes.append("the file also holds EMA weights; the regular weights are used")
    return ModelInfo(
        family=family,
        loadable=not problems,
        reason="; ".join(problems),
        prediction_type=guess.prediction_type,
        prediction_source=guess.source,
        zero_terminal_snr=guess.zero_terminal_snr,
        parameters={name: count for name, count in parameters.items() if count},
        unet=unet,
        text_encoders=text_encoders,
        vae=vae,
        native_size=native,
        notes=tuple(notes),
        **common,
    )


def _text_encoders(
    table: TensorTable, unet: UNetLayout | None
) -> tuple[str, tuple[TextEncoderLayout, ...], tuple[str, ...], str]:
    """(family, encoders, their key prefixes, problem) from which text encoder keys are present."""

    def present(prefix: str) -> bool:
        return any(name.startswith(prefix) for name in table.shapes)

    try:
        if present(SDXL_TEXT_PREFIXES[0]) and present(SDXL_TEXT_PREFIXES[1]):
            encoders = (
                layouts.clip_text_layout(table.with_prefix(SDXL_TEXT_PREFIXES[0])),
                layouts.open_clip_text_layout(table.with_prefix(SDXL_TEXT_PREFIXES[1])),
            )
            return "sdxl", encoders, SDXL_TEXT_PREFIXES, ""
        if present(SDXL_REFINER_TEXT_PREFIX):
            return (
                "sdxl",
                (),
                (),
                "it is an SDXL refiner, which only refines another model's images; not supported",
            )
        if present(SD1_TEXT_PREFIX):
            return (
                "sd1",
                (layouts.clip_text_layout(table.with_prefix(SD1_TEXT_PREFIX)),),
                (SD1_TEXT_PREFIX,),
                "",
            )
        if present(SD2_TEXT_PREFIX):
            encoder = layouts.open_clip_text_layout(table.with_prefix(SD2_TEXT_PREFIX))
            return "sd2", (encoder,), (SD2_TEXT_PREFIX,), ""
    except LayoutError as error:
        return "unknown", (), (), f"its text encoder cannot be rebuilt ({error})"
    context = unet.context_dim if unet else None
    family = {768: "sd1", 1024: "sd2", 2048: "sdxl"}.get(context or 0, "unknown")
    return family, (), (), "the file holds a UNet but no text encoder, so it cannot turn prompts into images"


def _compatibility_problems(
    family: str, unet: UNetLayout, encoders: tuple[TextEncoderLayout, ...], vae: VaeLayout | None
) -> list[str]:
    problems = []
    if unet.in_channels != 4 or unet.out_channels != 4:
        kind = OTHER_INPUT_CHANNELS.get(unet.in_channels, f"a UNet with {unet.in_channels} input channels")
        problems.append(f"it is {kind}; only text-to-image models with 4 latent channels are supported")
    if encoders:
        expected_context = sum(encoder.hidden_size for encoder in encoders)
        if unet.context_dim != expected_context:
            problems.append(
                f"its UNet expects text features of width {unet.context_dim} "
                f"but the text encoder gives {expected_context}"
            )
        for encoder in encoders:
            if encoder.vocab_size != CLIP_VOCAB_SIZE:
                problems.append(
                    f"its text encoder has a vocabulary of {encoder.vocab_size:,} tokens, "
                    f"not CLIP's {CLIP_VOCAB_SIZE:,}"
                )
    if family == "sdxl" and encoders and unet.addition_embed_dim is None:
        problems.append("it has SDXL's text encoders but its UNet lacks SDXL's size conditioning")
    if family in ("sd1", "sd2") and unet.addition_embed_dim is not None:
        problems.append(
            "its UNet takes an extra image/class embedding (unCLIP-style), which is not supported"
        )
    if vae is not None and vae.latent_channels != unet.in_channels and unet.in_channels == 4:
        problems.append(
            f"its VAE has {vae.latent_channels} latent channels but the UNet takes {unet.in_channels}"
        )
    return problems


def _vae_shapes(table: TensorTable) -> dict[str, tuple[int, ...]]:
    for prefix in VAE_PREFIXES:
        shapes = table.with_prefix(prefix)
        if "encoder.conv_in.weight" in shapes:
            return shapes
    return {}


def _classify_other(table: TensorTable) -> tuple[str, str]:
    """(family, reason) for files that are not a whole model."""
    names = list(table.shapes)
    if _vae_shapes(table) or ("encoder.conv_in.weight" in table and "decoder.conv_out.weight" in table):
        return "vae", "it is a VAE on its own: choose it as the VAE of a model in the model's settings"
    if any(re.search(r"lora_(down|up|A|B)\b|^lora_(unet|te)", name) for name in names):
        return "lora", "it is a LoRA, which modifies a base model and cannot be opened on its own"
    if any(
        name in ("emb_params", "clip_l", "clip_g") or name.startswith("string_to_param") for name in names
    ):
        return "embedding", "it is a textual inversion embedding, not a model"
    if any(name.startswith("control_model.") for name in names):
        return "controlnet", "it is a ControlNet, which needs a base model; not supported"
    if "conv_in.weight" in table and any(name.startswith("down_blocks.") for name in names):
        return (
            "unknown",
            "it is one component saved in diffusers layout: open the whole diffusers model folder instead",
        )
    if not names:
        return "unknown", f"the file holds no tensors; {SUPPORTED}"
    prefixes = sorted({".".join(name.split(".")[:2]) for name in names})
    sample = ", ".join(prefixes[:4]) + (" …" if len(prefixes) > 4 else "")
    return "unknown", f"found {len(names):,} tensors ({sample}) but no Stable Diffusion layout; {SUPPORTED}"


def human_count(count: int) -> str:
    if count >= 10**9:
        return f"{count / 1e9:.2f} B"
    if count >= 10**6:
        return f"{count / 1e6:.1f} M"
    return f"{count / 1e3:.1f} K" if count >= 1000 else str(count)
