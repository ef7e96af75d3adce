"""Where the parts of a FLUX.1 single file come from: inside it (ComfyUI's all-in-one files), the
user's choice (``--part NAME=PATH``, or remembered per model), or files beside it under ComfyUI's
names (``ae.safetensors``, ``clip_l.safetensors``, ``t5xxl_fp16.safetensors``), also in the
library's ``text_encoders/``, ``clip/`` and ``vae/`` folders. And the tokenizers, which no file holds.
SD 3 files add CLIP-G (``clip_g.safetensors``) and their own VAE names (``family="sd3"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldm_studio.engine.checkpoints.tensors import TensorTable, read_safetensors_header
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.flow_files import with_article

PARTS = ("clip_l", "clip_g", "t5xxl", "vae")
FAMILY_PARTS = {"flux": ("clip_l", "t5xxl", "vae"), "sd3": ("clip_l", "clip_g", "t5xxl", "vae")}
# SD 3 runs without T5 (less faithfully); FLUX reads its prompt with it
REQUIRED_PARTS = {"flux": ("clip_l", "t5xxl", "vae"), "sd3": ("clip_l", "clip_g", "vae")}
FAMILY_NAMES = {"flux": "FLUX.1", "sd3": "SD 3"}
KIND_MARKERS = {  # a tensor each kind of part has (prefix removed), to tell a wrong file
    "clip_l": ("text_model.embeddings.token_embedding.weight", "embeddings.token_embedding.weight"),
    "clip_g": ("text_projection.weight",),  # CLIP-G always carries its projection; SD 3's CLIP-L does not
    "t5xxl": ("encoder.block.0.layer.0.SelfAttention.q.weight",),
    "vae": ("decoder.conv_out.weight",),
}
TOKENIZER_PARTS = ("tokenizers", "t5_tokenizer")  # a diffusers FLUX / SD 3 folder; a T5 tokenizer folder
PART_ALIASES = {"ae": "vae", "clip": "clip_l", "t5": "t5xxl"}
INSIDE_PREFIXES = {
    "clip_l": ("text_encoders.clip_l.transformer.",),
    "clip_g": ("text_encoders.clip_g.transformer.",),
    "t5xxl": ("text_encoders.t5xxl.transformer.",),
    "vae": ("vae.", "first_stage_model."),
}
COMFYUI_NAMES = {
    "vae": ("ae.safetensors", "flux_vae.safetensors", "ae.sft"),
    "clip_l": ("clip_l.safetensors",),
    "clip_g": ("clip_g.safetensors",),
    "t5xxl": (
        "t5xxl_fp16.safetensors",
        "t5xxl_fp8_e4m3fn.safetensors",
        "t5xxl_fp8_e4m3fn_scaled.safetensors",
        "t5xxl.safetensors",
    ),
}
LIBRARY_FOLDERS = {
    "vae": ("vae",),
    "clip_l": ("text_encoders", "clip"),
    "clip_g": ("text_encoders", "clip"),
    "t5xxl": ("text_encoders", "clip"),
}
SD3_VAE_NAMES = ("sd3_vae.safetensors", "sd3.5_vae.safetensors")  # FLUX's ae.safetensors would not fit
LABELS = {
    "clip_l": "the CLIP-L text encoder (clip_l.safetensors)",
    "clip_g": "the CLIP-G text encoder (clip_g.safetensors)",
    "t5xxl": "the T5-XXL text encoder (t5xxl_fp16.safetensors)",
    "vae": "the 16-channel FLUX VAE (ae.safetensors)",
}
CLI_NAMES = {"clip_l": "clip_l", "clip_g": "clip_g", "t5xxl": "t5xxl", "vae": "ae"}
SD3_LABELS = {"vae": "the 16-channel SD 3 VAE (sd3_vae.safetensors)"}
SD3_CLI_NAMES = {"vae": "vae"}


def label(part: str, family: str = "flux") -> str:
    """How a part is named to the user; the VAE differs between FLUX and SD 3."""
    return (SD3_LABELS if family == "sd3" else {}).get(part, LABELS[part])


def cli_name(part: str, family: str = "flux") -> str:
    return (SD3_CLI_NAMES if family == "sd3" else {}).get(part, CLI_NAMES[part])


@dataclass(frozen=True)
class PartSource:
    file: Path
    prefix: str  # the part's tensors are those under this prefix, which is removed
    origin: str  # "inside", "chosen", "beside the model"


def part_name(name: str) -> str:
    """The part a user's name means (``ae`` is the VAE); ValueError with the names there are."""
    key = PART_ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in PARTS + TOKENIZER_PARTS:
        known = ", ".join(sorted({*CLI_NAMES.values(), *TOKENIZER_PARTS}))
        raise ValueError(f"unknown part {name!r}: use one of {known}")
    return key


def normalise_parts(parts: dict[str, Any] | None) -> dict[str, Path]:
    return {part_name(name): Path(path).expanduser() for name, path in (parts or {}).items() if path}


def inside_prefix(table: TensorTable, part: str) -> str | None:
    for prefix in INSIDE_PREFIXES[part]:
        if any(name.startswith(prefix) for name in table.shapes):
            return prefix
    return None


def _beside(model: Path, part: str, family: str = "flux") -> Path | None:
    folders = [model.parent] + [model.parent.parent / name for name in LIBRARY_FOLDERS[part]]
    names = SD3_VAE_NAMES if family == "sd3" and part == "vae" else COMFYUI_NAMES[part]
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def find_parts(
    model: Path, table: TensorTable, chosen: dict[str, Path], family: str = "flux"
) -> dict[str, PartSource]:
    """Each part's source, inside the file first; a part found nowhere is left out."""
    found: dict[str, PartSource] = {}
    for part in FAMILY_PARTS[family]:
        prefix = inside_prefix(table, part)
        if prefix is not None:
            found[part] = PartSource(model, prefix, "inside")
        elif part in chosen:
            found[part] = PartSource(chosen[part], "", "chosen")
        elif (file := _beside(model, part, family)) is not None:
            found[part] = PartSource(file, "", "beside the model")
    return found


def missing_sentence(model: Path, variant: str, missing: list[str], family: str = "flux") -> str:
    """What is missing and how to give it, as one sentence."""
    needed = " and ".join(label(part, family) for part in missing)
    options = " ".join(f"--part {cli_name(part, family)}=PATH" for part in missing)
    return (
        f"{model.name} is {with_article(variant)} file without {needed}: put the file(s) beside it or in the "
        f"library's text_encoders/ and vae/ folders under those names, or choose them in the model's "
        f"settings (ldm-studio generate {options})"
    )


def is_kind(part: str, shapes: dict[str, tuple[int, ...]]) -> bool:
    """Whether these tensors (prefix removed) can be ``part``: each kind has a tensor only it holds."""
    return any(marker in shapes for marker in KIND_MARKERS[part])


def check_kind(part: str, source: PartSource, shapes: dict[str, tuple[int, ...]], family: str) -> None:
    """ModelLoadError with a sentence when ``source`` holds another kind of part than ``part``."""
    if not is_kind(part, shapes):
        where = source.file.name if source.origin != "inside" else f"the part of {source.file.name}"
        option = f"--part {cli_name(part, family)}=PATH"
        raise ModelLoadError(f"{where} is not {label(part, family)}: choose that file with {option}")


def part_table(source: PartSource, part: str) -> dict[str, tuple[int, ...]]:
    """The part's tensor shapes (prefix removed); ModelLoadError when its file cannot be read."""
    if not source.file.is_file():
        raise ModelLoadError(f"the {CLI_NAMES[part]} file {source.file} does not exist")
    if source.file.suffix.lower() not in (".safetensors", ".sft"):
        raise ModelLoadError(f"the {CLI_NAMES[part]} file {source.file.name} is not a .safetensors file")
    return read_safetensors_header(source.file).with_prefix(source.prefix)


def t5_tokenizer_source(chosen: dict[str, Path]) -> Path | None:
    """The folder the T5 tokenizer is read from: the user's choice (a tokenizer folder, or a diffusers
    FLUX / SD 3 folder's tokenizer_2 / tokenizer_3), else the one LDM Studio ships; None when neither."""
    from ldm_studio.engine.t5_tokenizer import shipped_t5_tokenizer_folder

    for key in TOKENIZER_PARTS[::-1]:
        folder = chosen.get(key)
        if folder is None:
            continue
        for sub in ("tokenizer_2", "tokenizer_3", ""):
            candidate = folder / sub if sub else folder
            if (candidate / "tokenizer.json").is_file() or (candidate / "spiece.model").is_file():
                return candidate
    shipped = shipped_t5_tokenizer_folder()
    return shipped if (shipped / "tokenizer.json").is_file() else None


def clip_tokenizer_source(chosen: dict[str, Path], sub: str = "tokenizer") -> Path | None:
    """A diffusers folder's ``sub`` tokenizer (SD 3's CLIP-G: tokenizer_2) when the user gave one
    (``--part tokenizers=FOLDER``), else None (the shipped CLIP vocabulary)."""
    folder = chosen.get("tokenizers")
    if folder is not None and any((folder / sub / n).is_file() for n in ("vocab.json", "tokenizer.json")):
        return folder / sub
    return None


def clip_tokenizer(chosen: dict[str, Path], config_folder: Path, sub: str = "tokenizer") -> Any:
    """The user's diffusers tokenizer, else the shipped CLIP vocabulary with ``config_folder``'s
    ``sub``/tokenizer_config.json (which sets the padding: SD 3's CLIP-G pads with "!")."""
    import shutil
    import tempfile

    from transformers import CLIPTokenizer

    from ldm_studio.engine.checkpoints.configs import add_clip_vocabulary

    source = clip_tokenizer_source(chosen, sub)
    if source is not None:
        return CLIPTokenizer.from_pretrained(source, local_files_only=True)
    with tempfile.TemporaryDirectory(prefix="ldm-studio-clip-") as temporary:
        folder = Path(temporary)
        shutil.copyfile(config_folder / sub / "tokenizer_config.json", folder / "tokenizer_config.json")
        return CLIPTokenizer.from_pretrained(add_clip_vocabulary(folder), local_files_only=True)


NO_T5_TOKENIZER = (
    "the T5 tokenizer is missing (no file holds it, and LDM Studio's own copy in "
    "resources/tokenizers/t5 is gone): point at a FLUX or SD 3 diffusers folder with "
    "--part tokenizers=FOLDER, or reinstall LDM Studio"
)
