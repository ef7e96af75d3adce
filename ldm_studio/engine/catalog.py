"""The model catalogue: what model files are called, where they are found, how they are named and hashed.

One place for model identity, used by the model library (``engine.library``), the loader, the CLI
and the window: the file suffixes we read, the kinds of model file and the folders each kind lives
in, the one folder scanner, the family names and their labels, the A1111-compatible hash and the
way sizes are shown.

A leaf module: no Qt, no torch, and nothing from ``engine.checkpoints`` (which builds on it), so
the window can list models before torch is imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.paths import UserDirs, resource, user_dirs, write_json_atomically

log = logging.getLogger(__name__)

# --- file formats ------------------------------------------------------------------------------

SAFETENSORS_SUFFIX = ".safetensors"
GGUF_SUFFIX = ".gguf"  # llama.cpp's quantised format; FLUX.1 transformers load (checkpoints.flow_gguf)
# Pickled PyTorch checkpoints: A1111 and kohya write .ckpt/.pt, other trainers .pth/.bin.
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
# Every weight file the engine can read; a checkpoint is listed, inspected and loaded by these.
CHECKPOINT_SUFFIXES = (SAFETENSORS_SUFFIX, *PICKLE_SUFFIXES)
# What the model list shows and the loader opens: checkpoints, and GGUF files (FLUX.1 transformers)
MODEL_FILE_SUFFIXES = (*CHECKPOINT_SUFFIXES, GGUF_SUFFIX)
DIFFUSERS_MARKER = "model_index.json"


def file_type(path: Path) -> str:
    """The type inspection reports: "diffusers" (a folder), "safetensors", "gguf", or "ckpt" (any pickle)."""
    path = Path(path)
    if path.is_dir():
        return "diffusers"
    suffix = path.suffix.lower()
    return "ckpt" if suffix in PICKLE_SUFFIXES else suffix.lstrip(".")


def model_name(path: Path) -> str:
    """The name a model goes by: a file's stem, a folder's name (A1111 and ComfyUI do the same)."""
    path = Path(path)
    return path.name if path.is_dir() else path.stem


# --- kinds of model file -----------------------------------------------------------------------

AUTOV2_LENGTH = 10  # A1111's "Model hash"
NETWORK_HASH_LENGTH = 12  # A1111's "Lora hashes" / "TI hashes"


@dataclass(frozen=True)
class ModelKind:
    """One kind of file the catalogue lists, with the folder it lives in under the data dir."""

    name: str
    label: str  # plural, for people: "LoRAs"
    folder: str  # under the user data folder
    suffixes: tuple[str, ...]
    folder_marker: str = ""  # a file that makes a whole folder one model of this kind
    hash_length: int = AUTOV2_LENGTH  # hex digits of the SHA-256 that A1111 records
    folders_file: str = ""  # the user's added folders of this kind, in the config folder

    @property
    def folders_filename(self) -> str:
        return self.folders_file or f"{self.name}_folders.json"

    def default_folder(self, dirs: UserDirs | None = None) -> Path:
        return (dirs or user_dirs()).data / self.folder

    def is_model_folder(self, path: Path) -> bool:
        return bool(self.folder_marker) and (Path(path) / self.folder_marker).is_file()

    def is_model_file(self, path: Path) -> bool:
        return Path(path).suffix.lower() in self.suffixes

    def short_hash(self, sha256_hex: str) -> str:
        return sha256_hex[: self.hash_length]


CHECKPOINT = ModelKind(
    "checkpoint",
    "models",
    "models",
    MODEL_FILE_SUFFIXES,
    folder_marker=DIFFUSERS_MARKER,
    folders_file="model_folders.json",  # the name it had before there were other kinds
)
LORA = ModelKind(
    "lora", "LoRAs", "loras", (SAFETENSORS_SUFFIX, ".pt", ".ckpt"), hash_length=NETWORK_HASH_LENGTH
)
EMBEDDING = ModelKind(
    "embedding",
    "textual-inversion embeddings",
    "embeddings",
    (SAFETENSORS_SUFFIX, ".pt", ".bin"),
    hash_length=NETWORK_HASH_LENGTH,
)
UPSCALER = ModelKind("upscaler", "upscalers", "upscalers", (".pth", ".pt", SAFETENSORS_SUFFIX))
# TAESD ships as single .pth/.safetensors decoders or as a diffusers AutoencoderTiny folder.
TINY_AUTOENCODER = ModelKind(
    "tiny_autoencoder",
    "tiny autoencoders",
    "tiny_autoencoders",
    (SAFETENSORS_SUFFIX, ".pth"),
    folder_marker="config.json",
)
KINDS = {kind.name: kind for kind in (CHECKPOINT, LORA, EMBEDDING, UPSCALER, TINY_AUTOENCODER)}


# --- families ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    name: str  # the key stored in caches, metadata and the CLI's JSON
    label: str  # "Stable Diffusion 1.x"
    short_label: str  # "SD 1.x", where space is short (the model list)


FAMILIES = {
    family.name: family
    for family in (
        Family("sd1", "Stable Diffusion 1.x", "SD 1.x"),
        Family("sd2", "Stable Diffusion 2.x", "SD 2.x"),
        Family("sdxl", "Stable Diffusion XL", "SDXL"),
        Family("ldm-studio", "LDM Studio model", "LDM Studio"),
        Family("sd3", "Stable Diffusion 3.x", "SD 3"),  # flow matching, MMDiT (engine.flow_models)
        Family("flux", "FLUX.1", "FLUX.1"),
        Family("vae", "VAE (autoencoder) on its own", "VAE"),
        Family("lora", "LoRA", "LoRA"),
        Family("embedding", "textual inversion embedding", "embedding"),
        Family("controlnet", "ControlNet", "ControlNet"),
        Family("unknown", "unknown", "unknown"),
        Family("unreadable", "unreadable file", "unreadable"),
    )
}
FAMILY_LABELS = {name: family.label for name, family in FAMILIES.items()}


def family_label(name: str) -> str:
    family = FAMILIES.get(name)
    return family.label if family else name


def family_short_label(name: str) -> str:
    family = FAMILIES.get(name)
    return family.short_label if family else name


# --- finding models ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFile:
    """A model file or folder found on disk, before anything is read from it."""

    path: Path
    kind: ModelKind = CHECKPOINT
    bundled: bool = False  # shipped with LDM Studio

    @property
    def name(self) -> str:
        return model_name(self.path)


def find_models(root: Path, kind: ModelKind = CHECKPOINT) -> list[Path]:
    """Files and model folders of ``kind`` under ``root``, sorted, skipping hidden names and never
    descending into a model folder (a diffusers folder's own weight files are not models)."""
    root = Path(root).expanduser()
    found: list[Path] = []
    _collect(root, kind, found, visited=set())
    return found


def _collect(folder: Path, kind: ModelKind, found: list[Path], visited: set[Path]) -> None:
    if not folder.is_dir():
        return
    if kind.is_model_folder(folder):
        found.append(folder)
        return
    real = folder.resolve()
    if real in visited:  # a symlink loop, or the same folder reached twice
        return
    visited.add(real)
    try:
        children = sorted(folder.iterdir())
    except OSError as error:
        log.warning("cannot list %s: %s", folder, error)
        return
    for child in children:
        if child.name.startswith("."):
            continue
        if child.is_dir():
            _collect(child, kind, found, visited)
        elif kind.is_model_file(child) and child.is_file():
            found.append(child)


def find_all(
    folders: list[Path], bundled_dir: Path | None = None, kind: ModelKind = CHECKPOINT
) -> list[ModelFile]:
    """Every model of ``kind`` in ``folders`` and the bundled folder, each once (by real path):
    bundled ones first, then by name."""
    found: dict[Path, bool] = {}
    roots = [(Path(folder), False) for folder in folders]
    if bundled_dir is not None:
        roots.append((bundled_dir, True))
    for root, bundled in roots:
        for path in find_models(root, kind):
            found.setdefault(path.resolve(), bundled)
    ordered = sorted(found.items(), key=lambda item: (not item[1], item[0].name.lower()))
    return [ModelFile(path, kind, bundled) for path, bundled in ordered]


def bundled_models_dir() -> Path | None:
    try:
        folder = resource("models")
    except FileNotFoundError:
        return None
    return folder if folder.is_dir() else None


def bundled_models() -> list[Path]:
    folder = bundled_models_dir()
    return find_models(folder) if folder is not None else []


def default_model() -> Path | None:
    """The model opened when nothing else was asked for: the first one shipped with LDM Studio."""
    models = bundled_models()
    return models[0] if models else None


# --- the user's folders ------------------------------------------------------------------------


def user_folders(kind: ModelKind = CHECKPOINT) -> list[Path]:
    """Folders the user added for ``kind`` (its folder in the data dir is always scanned too)."""
    try:
        data = json.loads((user_dirs().config / kind.folders_filename).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        log.warning("ignoring unreadable %s: %s", kind.folders_filename, error)
        return []
    return [Path(item) for item in data if isinstance(item, str)] if isinstance(data, list) else []


def bundled_folder(kind: ModelKind) -> Path | None:
    """The examples of ``kind`` shipped with LDM Studio (``resources/loras``, say), if any."""
    if kind is CHECKPOINT:
        return bundled_models_dir()
    try:
        folder = resource(kind.folder)
    except FileNotFoundError:
        return None
    return folder if folder.is_dir() else None


def library_folders(kind: ModelKind = CHECKPOINT) -> list[Path]:
    """Where models of ``kind`` are looked for: the data dir's folder, the user's own, then the
    examples shipped with the app (for kinds other than checkpoints, whose bundled model is listed
    on its own). A name found earlier wins."""
    default = kind.default_folder()
    folders = [default, *(folder for folder in user_folders(kind) if folder != default)]
    shipped = bundled_folder(kind) if kind is not CHECKPOINT else None
    return [*folders, shipped] if shipped is not None and shipped not in folders else folders


def add_folder(folder: Path, kind: ModelKind = CHECKPOINT) -> list[Path]:
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise ModelLoadError(f"{folder} is not a folder")
    folders = user_folders(kind)
    if folder not in folders:
        folders.append(folder)
    write_json_atomically(user_dirs().config / kind.folders_filename, [str(f) for f in folders])
    return folders


def remove_folder(folder: Path, kind: ModelKind = CHECKPOINT) -> list[Path]:
    folder = Path(folder).expanduser().resolve()
    folders = [f for f in user_folders(kind) if f != folder]
    write_json_atomically(user_dirs().config / kind.folders_filename, [str(f) for f in folders])
    return folders


# --- hashes and sizes --------------------------------------------------------------------------

CHUNK_BYTES = 8 * 1024 * 1024


def file_sha256(path: Path, should_stop: Callable[[], bool] | None = None, *, start: int = 0) -> str:
    """SHA-256 of the file from byte ``start`` on, in chunks; ``should_stop`` can cancel between them."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        stream.seek(start)
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
            if should_stop is not None and should_stop():
                raise InterruptedError("hashing cancelled")
    return digest.hexdigest()


def autov2(sha256_hex: str) -> str:
    """A1111's "AutoV2" model hash: the first 10 hex digits of the file's SHA-256."""
    return CHECKPOINT.short_hash(sha256_hex)


SIZE_UNITS = ("kB", "MB", "GB", "TB")  # powers of 1000, after plain bytes


def human_size(size: float) -> str:
    """Bytes in decimal units with three significant digits, as file managers and model hubs show
    them: ``2.13 GB`` for SD 1.5's 2,132,625,894-byte fp16 file."""
    value = float(size)
    if abs(value) < 1000:
        return f"{value:.0f} B"
    text = ""
    for unit in SIZE_UNITS:
        value /= 1000
        # decide on the rounded figure: 999.96 kB reads "1.00 MB", 9.996 MB "10.0 MB"
        decimals = next((d for d in (2, 1) if abs(round(value, d)) < 10 ** (3 - d)), 0)
        text = f"{value:.{decimals}f} {unit}"
        if abs(round(value, decimals)) < 1000:
            break
    return text
