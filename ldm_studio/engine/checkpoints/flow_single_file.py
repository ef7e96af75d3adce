"""FLUX.1 single files, loaded offline: BFL's transformer-only file with its parts beside it the
ComfyUI way, or ComfyUI's all-in-one file; and BFL-layout GGUF transformers, kept quantised
(``flow_gguf``). Nothing comes from a hub.

Each part is built on the meta device from a config refitted to its shapes (``flow_configs``) and
takes the file's tensors as they are (``load_state_dict(assign=True)``), so no random
initialisation runs and a 12 B transformer is held once. A part that is missing or is the wrong
kind of file stops the load with one sentence naming the file to choose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ldm_studio.engine.catalog import GGUF_SUFFIX
from ldm_studio.engine.checkpoints import flow_configs, fp8_weights
from ldm_studio.engine.checkpoints.flow_gguf import load_gguf_transformer, read_gguf_table
from ldm_studio.engine.checkpoints.flow_parts import (
    FAMILY_NAMES,
    LABELS,
    NO_T5_TOKENIZER,
    REQUIRED_PARTS,
    PartSource,
    check_kind,
    clip_tokenizer,
    find_parts,
    missing_sentence,
    normalise_parts,
    part_table,
    t5_tokenizer_source,
)
from ldm_studio.engine.checkpoints.flux_keys import convert_flux_transformer
from ldm_studio.engine.checkpoints.layout import LayoutError
from ldm_studio.engine.checkpoints.tensors import TensorTable, read_safetensors_header
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.flow_files import FlowFile, _transformer_keys, describe_flow_file, with_article


def given_parts(path: Path, chosen: dict[str, Any] | None) -> dict[str, Path]:
    """The parts the user gave for ``path``: remembered in its settings, then this call's (which win).
    Tokenizer folders too, which no file search finds."""
    from ldm_studio.engine.checkpoints.settings import get_model_settings

    remembered = normalise_parts(get_model_settings(path).get("parts"))
    return {**remembered, **normalise_parts(chosen)}


def part_parameters(table: TensorTable, sources: dict[str, PartSource]) -> tuple[dict[str, int], str]:
    """(parameters per part, "" or why a part's file cannot be read), the same count for .safetensors
    and .gguf files: the transformer (what the file holds but its inside parts) and each part found,
    inside or beside; an unreadable part is left out."""
    import math

    counts, problem = {}, ""
    for part, source in sources.items():
        try:
            counts[part] = sum(math.prod(shape) for shape in part_table(source, part).values())
        except ModelLoadError as error:
            problem = problem or str(error)
    inside = sum(count for part, count in counts.items() if sources[part].origin == "inside")
    return {"transformer": table.numel() - inside, **counts}, problem


def parts_status(
    path: Path, table: TensorTable, chosen: dict[str, Any] | None, family: str
) -> tuple[dict[str, PartSource], str]:
    """(sources of the parts, "" or the sentence that says what is missing) for a FLUX.1 or SD 3
    single file: remembered choices, then this call's, then what lies inside or beside it."""
    flow = describe_flow_file(table.shapes)
    if flow is None or flow.family != family:
        raise ModelLoadError(f"{path.name} is not {with_article(FAMILY_NAMES[family])} file")
    if flow.layout == "diffusers":
        return {}, (
            f"{path.name} is {with_article(flow.variant)} transformer saved in diffusers' layout; open the "
            "diffusers folder it came from (the one with model_index.json) instead"
        )
    sources = find_parts(path, table, given_parts(path, chosen), family=family)
    missing = [part for part in REQUIRED_PARTS[family] if part not in sources]
    return sources, missing_sentence(path, flow.variant, missing, family=family) if missing else ""


def _tensors(
    source: PartSource, dtype: Any, skip: tuple[str, ...] = (), keep_fp8: bool = False
) -> dict[str, Any]:
    """The part's tensors in ``dtype``; fp8 ones stay fp8 with ``keep_fp8`` (engine.checkpoints.fp8_weights),
    scaled-fp8 ones are dequantised."""
    from safetensors import safe_open

    raw = {}
    with safe_open(str(source.file), framework="pt") as handle:
        for name in handle.keys():  # noqa: SIM118 (a safe_open handle is no dict)
            if name.startswith(source.prefix) and not name.startswith(skip):
                raw[name[len(source.prefix) :]] = handle.get_tensor(name)
    if fp8_weights.is_scaled(raw):
        return fp8_weights.unscale(raw, dtype)
    return {
        name: tensor.to(dtype)
        if tensor.is_floating_point() and not (keep_fp8 and tensor.dtype in fp8_weights.FP8_DTYPES)
        else tensor
        for name, tensor in raw.items()
    }


def fp8_parts(
    table: TensorTable, sources: dict[str, PartSource], parameters: dict[str, int]
) -> dict[str, int]:
    """Bytes held by the parts kept in fp8 when loaded (one a weight): the transformer and T5."""
    prefix, _ = _transformer_keys(table.shapes)
    tables = {"transformer": (table, prefix)}
    t5 = sources.get("t5xxl")
    if t5 is not None:
        tables["t5xxl"] = (table if t5.origin == "inside" else read_safetensors_header(t5.file), t5.prefix)
    kept = {}
    for part, (part_table_, part_prefix) in tables.items():
        names = [name for name in part_table_.shapes if name.startswith(part_prefix)]
        share = fp8_weights.fp8_share(part_table_.dtypes, part_table_.shapes, part_prefix)
        if part in parameters and share > 0.5 and not fp8_weights.is_scaled(names):
            kept[part] = parameters[part]
    return kept


def _assign(model_class: Any, config: Any, state: dict[str, Any], label: str, *, strict: bool = True) -> Any:
    """``model_class`` built on the meta device from ``config``, holding ``state``'s tensors."""
    import torch

    with torch.device("meta"):
        model = (
            model_class.from_config(config) if hasattr(model_class, "from_config") else model_class(config)
        )
    wanted = set(model.state_dict())
    extra = sorted(set(state) - wanted)
    missing = sorted(wanted - set(state))
    if strict and (extra or missing):
        shown = ", ".join((missing or extra)[:3])
        kind = "lacks" if missing else "has unexpected tensors"
        raise ModelLoadError(f"{label} {kind}: {shown}")
    model.load_state_dict({k: v for k, v in state.items() if k in wanted}, strict=False, assign=True)
    for name, buffer in model.named_buffers():
        if buffer.device.type == "meta" and name.endswith("position_ids"):  # not stored: CLIP rebuilds it
            module = model.get_submodule(name.rpartition(".")[0])
            module.register_buffer(
                "position_ids", torch.arange(buffer.shape[-1]).expand(buffer.shape), persistent=False
            )
    left = [name for name, tensor in model.state_dict().items() if tensor.device.type == "meta"]
    if left:
        raise ModelLoadError(f"{label} lacks weights: {', '.join(left[:3])}")
    return model.eval()


def _tokenizers(chosen: dict[str, Path], config_folder: Path) -> tuple[Any, Any]:
    from ldm_studio.engine.t5_tokenizer import load_t5_tokenizer

    t5_folder = t5_tokenizer_source(chosen)
    if t5_folder is None:
        raise ModelLoadError(NO_T5_TOKENIZER)
    return clip_tokenizer(chosen, config_folder), load_t5_tokenizer(t5_folder)


def _check_vocabulary(tokenizer: Any, rows: int, part: str, source: PartSource) -> None:
    if len(tokenizer) > rows:
        raise ModelLoadError(
            f"{source.file.name} embeds {rows:,} tokens but its tokenizer has {len(tokenizer):,}: "
            f"it is not {LABELS[part]}, or the tokenizer is another model's"
        )


def _safetensors_transformer(path: Path, prefix: str, sources: dict, folder: Path, dtype: Any) -> Any:
    import diffusers

    transformer_source = PartSource(path, prefix, "inside")
    skip = tuple(p for source in sources.values() if source.origin == "inside" for p in [source.prefix])
    original = _tensors(transformer_source, dtype, skip if prefix == "" else (), keep_fp8=True)
    config = flow_configs.transformer(folder, {k: tuple(v.shape) for k, v in original.items()})
    transformer = _assign(
        diffusers.FluxTransformer2DModel,
        config,
        convert_flux_transformer(original),
        f"{path.name}'s transformer",
    )
    fp8_weights.keep_in_fp8(transformer, dtype)
    return transformer


def load_flux_single_file(path: Path, torch_dtype: Any = None, chosen: dict[str, Any] | None = None) -> Any:
    """A ``FluxPipeline`` from a FLUX.1 single file and its parts; ModelLoadError with a sentence."""
    import diffusers
    import torch
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    dtype = torch_dtype or torch.float32
    path = Path(path).expanduser()
    gguf = path.suffix.lower() == GGUF_SUFFIX
    table = read_gguf_table(path) if gguf else read_safetensors_header(path)
    sources, problem = parts_status(path, table, chosen, "flux")
    if problem:
        raise ModelLoadError(problem)
    flow: FlowFile = describe_flow_file(table.shapes)  # type: ignore[assignment]
    given = given_parts(path, chosen)
    prefix, _ = _transformer_keys(table.shapes)
    folder = flow_configs.flux_config_folder(flow.variant == "FLUX.1 dev")
    shapes = {part: part_table(source, part) for part, source in sources.items()}
    for part, source in sources.items():
        check_kind(part, source, shapes[part], "flux")
    clip_tokenizer, t5_tokenizer = _tokenizers(given, folder)
    try:
        if gguf:  # weights kept quantised (engine.checkpoints.flow_gguf)
            transformer = load_gguf_transformer(path, table, prefix, folder, dtype)
        else:
            transformer = _safetensors_transformer(path, prefix, sources, folder, dtype)
        clip_shapes = {k.removeprefix("text_model."): v for k, v in shapes["clip_l"].items()}
        _check_vocabulary(
            clip_tokenizer, clip_shapes["embeddings.token_embedding.weight"][0], "clip_l", sources["clip_l"]
        )
        clip_state = {k.removeprefix("text_model."): v for k, v in _tensors(sources["clip_l"], dtype).items()}
        clip_config = CLIPTextConfig(**flow_configs.clip(folder, clip_shapes, clip_tokenizer))
        clip_state.pop("embeddings.position_ids", None)
        text_encoder = _assign(
            CLIPTextModel, clip_config, clip_state, sources["clip_l"].file.name, strict=False
        )
        t5_state = _tensors(sources["t5xxl"], dtype, keep_fp8=True)
        _check_vocabulary(t5_tokenizer, shapes["t5xxl"]["shared.weight"][0], "t5xxl", sources["t5xxl"])
        t5_state.setdefault("encoder.embed_tokens.weight", t5_state["shared.weight"])  # tied in T5
        t5_config = T5Config(**flow_configs.t5(folder, shapes["t5xxl"]))
        text_encoder_2 = _assign(T5EncoderModel, t5_config, t5_state, sources["t5xxl"].file.name)
        fp8_weights.keep_in_fp8(text_encoder_2, dtype)
        vae_config = flow_configs.vae(folder, shapes["vae"])
        vae_state = convert_ldm_vae_checkpoint(_tensors(sources["vae"], dtype), vae_config)
        vae = _assign(diffusers.AutoencoderKL, vae_config, vae_state, sources["vae"].file.name)
    except LayoutError as error:
        raise ModelLoadError(f"{path.name} cannot be loaded: {error}") from error
    if vae.config.latent_channels * 4 != transformer.config.in_channels:
        raise ModelLoadError(
            f"{sources['vae'].file.name} makes {vae.config.latent_channels}-channel latents; "
            f"{path.name} needs {LABELS['vae']}"
        )
    if text_encoder.config.hidden_size != transformer.config.pooled_projection_dim:
        raise ModelLoadError(
            f"{sources['clip_l'].file.name} is not {LABELS['clip_l']} (its width does not fit)"
        )
    if text_encoder_2.config.d_model != transformer.config.joint_attention_dim:
        raise ModelLoadError(
            f"{sources['t5xxl'].file.name} is not {LABELS['t5xxl']} (its width does not fit)"
        )
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(
        flow_configs.shipped(folder, "scheduler")
    )
    return diffusers.FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=t5_tokenizer,
        transformer=transformer,
    )
