"""Where the parts of a FLUX.1 single file come from: inside it (ComfyUI's all-in-one files), the
user's choice (``--part NAME=PATH``, or remembered per model), or files beside it under ComfyUI's
names (``ae.safetensors``, ``clip_l.safetensors``, ``t5xxl_fp16.safetensors``), also in the
library's ``text_encoders/``, ``clip/`` and ``vae/`` folders. And the tokenizers, which no file holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldm_studio.engine.checkpoints.tensors import TensorTable, read_safetensors_header
from ldm_studio.engine.errors import ModelLoadError

PARTS = ("clip_l", "t5xxl", "vae")
TOKENIZER_PARTS = ("tokenizers", "t5_tokenizer")  # a diffusers FLUX / SD 3 folder; a T5 tokenizer folder
PART_ALIASES = {"ae": "vae", "clip": "clip_l", "t5": "t5xxl"}
INSIDE_PREFIXES = {
    "clip_l": ("text_encoders.clip_l.transformer.",),
    "t5xxl": ("text_encoders.t5xxl.transformer.",),
    "vae": ("vae.", "first_stage_model."),
}
COMFYUI_NAMES = {
    "vae": ("ae.safetensors", "flux_vae.safetensors", "ae.sft"),
    "clip_l": ("clip_l.safetensors",),
    "t5xxl": (
        "t5xxl_fp16.safetensors",
        "t5xxl_fp8_e4m3fn.safetensors",
        "t5xxl_fp8_e4m3fn_scaled.safetensors",
        "t5xxl.safetensors",
    ),
}
LIBRARY_FOLDERS = {"vae": ("vae",), "clip_l": ("text_encoders", "clip"), "t5xxl": ("text_encoders", "clip")}
LABELS = {
    "clip_l": "the CLIP-L text encoder (clip_l.safetensors)",
    "t5xxl": "the T5-XXL text encoder (t5xxl_fp16.safetensors)",
    "vae": "the 16-channel FLUX VAE (ae.safetensors)",
}
CLI_NAMES = {"clip_l": "clip_l", "t5xxl": "t5xxl", "vae": "ae"}


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


def _beside(model: Path, part: str) -> Path | None:
    folders = [model.parent] + [model.parent.parent / name for name in LIBRARY_FOLDERS[part]]
    for folder in folders:
        for name in COMFYUI_NAMES[part]:
            if (folder / name).is_file():
                return folder / name
    return None


def find_parts(model: Path, table: TensorTable, chosen: dict[str, Path]) -> dict[str, PartSource]:
    """Each part's source, inside the file first; a part found nowhere is left out."""
    found: dict[str, PartSource] = {}
    for part in PARTS:
        prefix = inside_prefix(table, part)
        if prefix is not None:
            found[part] = PartSource(model, prefix, "inside")
        elif part in chosen:
            found[part] = PartSource(chosen[part], "", "chosen")
        elif (file := _beside(model, part)) is not None:
            found[part] = PartSource(file, "", "beside the model")
    return found


def missing_sentence(model: Path, variant: str, missing: list[str]) -> str:
    """What is missing and how to give it, as one sentence."""
    needed = " and ".join(LABELS[part] for part in missing)
    options = " ".join(f"--part {CLI_NAMES[part]}=PATH" for part in missing)
    return (
        f"{model.name} is a {variant} file without {needed}: put the file(s) beside it or in the "
        f"library's text_encoders/ and vae/ folders under those names, or choose them in the model's "
        f"settings (ldm-studio generate {options})"
    )


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


def clip_tokenizer_source(chosen: dict[str, Path]) -> Path | None:
    """A diffusers folder's tokenizer/ when the user gave one (``--part tokenizers=FOLDER``), else None
    (the shipped CLIP vocabulary)."""
    folder = chosen.get("tokenizers")
    if folder is not None and any(
        (folder / "tokenizer" / name).is_file() for name in ("vocab.json", "tokenizer.json")
    ):
        return folder / "tokenizer"
    return None


NO_T5_TOKENIZER = (
    "the T5 tokenizer is missing (no file holds it, and LDM Studio's own copy in "
    "resources/tokenizers/t5 is gone): point at a FLUX or SD 3 diffusers folder with "
    "--part tokenizers=FOLDER, or reinstall LDM Studio"
)
