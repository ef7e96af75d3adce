"""Textual-inversion embeddings: read every common file layout, check it fits the model, list the folder.

Layouts (what A1111's ``create_embedding_from_data`` accepts, minus PNG-embedded ones):

- A1111 ``.pt``: ``{"string_to_param": {"*": [n, dim]}, "name": …, "step": …}``;
- A1111/kohya ``.safetensors``: ``{"emb_params": [n, dim]}``;
- diffusers ``learned_embeds.safetensors`` / ``.bin``: ``{"<token>": [dim] or [n, dim]}``;
- SDXL: ``{"clip_l": [n, 768], "clip_g": [n, 1280]}``.

Pickles go through ``torch.load(weights_only=True)`` only (engine.checkpoints.pickles), so a file that
asks for code is refused before anything runs. The vectors come back as the prompt toolkit's
:class:`~ldm_studio.engine.prompts.Embedding`: keyed ``clip_l``/``clip_g`` for SDXL and ``default``
for a single-encoder file (SD 1.x / 2.x), which ``encode`` places by encoder. The name is the file stem,
as in A1111; A1111's ``TI hashes`` hash is the SHA-256 of the whole file, 12 hex digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ldm_studio.engine.catalog import EMBEDDING, family_label, find_models, library_folders
from ldm_studio.engine.errors import EngineError, ModelLoadError
from ldm_studio.engine.lora.hashing import HashCache, short_hash, whole_file_sha256
from ldm_studio.engine.lora.library import find_preview
from ldm_studio.engine.prompts import Embedding

SINGLE_KEY = "default"
SDXL_KEYS = ("clip_l", "clip_g")
FAMILY_BY_WIDTHS = {(768,): "sd1", (1024,): "sd2", (768, 1280): "sdxl"}


class EmbeddingError(EngineError):
    """An embedding file that cannot be read, or does not fit the loaded model's text encoder(s)."""


@dataclass(frozen=True)
class EmbeddingFile:
    """One embedding file, read: the vectors plus what the library shows about it."""

    path: Path
    embedding: Embedding
    token: str = ""  # the placeholder the file was trained with, where it names one ("<cat-toy>")
    step: int | None = None  # A1111's training step

    @property
    def name(self) -> str:
        return self.embedding.name

    @property
    def widths(self) -> tuple[int, ...]:
        return embedding_widths(self.embedding)

    @property
    def family(self) -> str:
        return FAMILY_BY_WIDTHS.get(self.widths, "")


def embedding_widths(embedding: Embedding) -> tuple[int, ...]:
    vectors = embedding.vectors
    keys = SDXL_KEYS if all(key in vectors for key in SDXL_KEYS) else tuple(vectors)
    return tuple(int(vectors[key].shape[-1]) for key in keys)


def _as_matrix(tensor: Any, file_name: str) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        raise EmbeddingError(f"{file_name} is not an embedding: it holds no floating-point vectors")
    tensor = tensor.detach().to("cpu", torch.float32)
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 2 or 0 in tensor.shape:
        raise EmbeddingError(
            f"{file_name} is not an embedding: its vectors have the shape {tuple(tensor.shape)}"
        )
    return tensor


def embedding_from_data(data: Any, name: str, file_name: str = "") -> tuple[Embedding, str, int | None]:
    """(embedding, trained token, step) from a loaded file's contents; EmbeddingError when it is none."""
    file_name = file_name or name
    if not isinstance(data, dict) or not data:
        raise EmbeddingError(
            f"{file_name} is not a textual-inversion embedding (it holds no table of vectors)"
        )
    step = data.get("step") if isinstance(data.get("step"), int) else None
    if "string_to_param" in data:
        params = data["string_to_param"]
        if not isinstance(params, dict) or len(params) != 1:
            raise EmbeddingError(
                f"{file_name} holds {len(params) if isinstance(params, dict) else 'no'} terms; "
                "an embedding file must hold exactly one"
            )
        token, tensor = next(iter(params.items()))
        trained = str(data.get("name", "")) if isinstance(data.get("name"), str) else ""
        return Embedding(name, {SINGLE_KEY: _as_matrix(tensor, file_name)}), trained or str(token), step
    if all(key in data for key in SDXL_KEYS):
        vectors = {key: _as_matrix(data[key], file_name) for key in SDXL_KEYS}
        counts = {key: vectors[key].shape[0] for key in SDXL_KEYS}
        if len(set(counts.values())) != 1:
            raise EmbeddingError(f"{file_name} is damaged: its clip_l and clip_g parts hold {counts} vectors")
        return Embedding(name, vectors), "", step
    tensors = {key: value for key, value in data.items() if isinstance(value, torch.Tensor)}
    if len(tensors) != 1:
        raise EmbeddingError(
            f"{file_name} is not a textual-inversion embedding LDM Studio knows "
            f"(it holds {len(tensors)} tensors: {', '.join(list(tensors)[:4]) or 'none'})"
        )
    token, tensor = next(iter(tensors.items()))
    return (
        Embedding(name, {SINGLE_KEY: _as_matrix(tensor, file_name)}),
        "" if token == "emb_params" else token,
        step,
    )


def _load_pickle(path: Path) -> Any:
    from ldm_studio.engine.checkpoints.pickles import explain_load_error, safe_unpickling

    try:
        with safe_unpickling(path):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except ModelLoadError:
        raise
    except Exception as error:  # UnpicklingError, RuntimeError, EOFError...: one sentence from the cause
        raise explain_load_error(path, error) from error


def read_embedding(path: Path | str) -> EmbeddingFile:
    """Open one embedding file; raise EmbeddingError with a sentence when it cannot be used."""
    from ldm_studio.engine.checkpoints.pickles import sniff_format
    from ldm_studio.engine.checkpoints.tensors import read_safetensors_header

    path = Path(path)
    try:
        kind = sniff_format(path)
        if kind == "safetensors":
            read_safetensors_header(path)  # a lying header is refused in words before the library maps it
            from safetensors.torch import load_file

            data: Any = load_file(str(path), device="cpu")
        elif kind in ("zip", "pickle"):
            data = _load_pickle(path)
        else:
            raise EmbeddingError(f"{path.name} is not an embedding file (unrecognised content)")
    except ModelLoadError as error:
        raise EmbeddingError(str(error)) from error
    except (OSError, RuntimeError, ValueError) as error:
        raise EmbeddingError(f"{path.name} could not be read: {error}") from error
    embedding, token, step = embedding_from_data(data, path.stem, path.name)
    return EmbeddingFile(path, embedding, token, step)


def _describe(widths: Sequence[int]) -> str:
    family = FAMILY_BY_WIDTHS.get(tuple(widths), "")
    text = " + ".join(str(width) for width in widths) + " wide"
    return f"{text}, {family_label(family)}" if family else text


def check_fits(embedding: Embedding, text_widths: Sequence[int]) -> None:
    """Raise EmbeddingError unless the embedding has vectors of the right width for every text encoder."""
    widths = embedding_widths(embedding)
    model = tuple(int(width) for width in text_widths)
    fits = (len(model) == 2 and all(key in embedding.vectors for key in SDXL_KEYS) and widths == model) or (
        len(model) == 1 and len(widths) == 1 and widths == model
    )
    if not fits:
        raise EmbeddingError(
            f"The embedding {embedding.name} ({_describe(widths)}) does not fit this model, whose text "
            f"encoder{'s are' if len(model) > 1 else ' is'} {_describe(model)}: use an embedding made for "
            f"{family_label(FAMILY_BY_WIDTHS.get(model, '')) if model in FAMILY_BY_WIDTHS else 'this model'}"
        )


def ti_sha256(path: Path, cache: HashCache | None = None) -> str:
    """A1111's ``TI hashes`` digest: SHA-256 of the whole file (no header skipping, unlike LoRAs)."""
    return (cache or HashCache()).digest("embedding", Path(path), whole_file_sha256)


@dataclass(frozen=True)
class EmbeddingInfo:
    name: str
    path: Path
    size: int
    family: str = ""
    vector_count: int = 0
    widths: tuple[int, ...] = ()
    token: str = ""
    sha256: str = ""
    preview: Path | None = None
    error: str = ""

    @property
    def hash(self) -> str:
        return short_hash(self.sha256)

    def fits(self, text_widths: Sequence[int]) -> bool:
        model = tuple(text_widths)
        return not self.error and self.widths == model


def embedding_info(
    path: Path, hash_cache: HashCache | None = None, *, compute_hash: bool = False
) -> EmbeddingInfo:
    """Describe one embedding file (they are small: it is read whole); ``error`` says why it is unusable."""
    path = Path(path)
    base = EmbeddingInfo(
        path.stem, path, path.stat().st_size if path.exists() else 0, preview=find_preview(path)
    )
    try:
        read = read_embedding(path)
    except EmbeddingError as error:
        return replace(base, error=str(error))
    sha256 = ""
    if hash_cache is not None:
        sha256 = ti_sha256(path, hash_cache) if compute_hash else hash_cache.lookup("embedding", path)
    return replace(
        base,
        family=read.family,
        vector_count=read.embedding.num_vectors,
        widths=read.widths,
        token=read.token,
        sha256=sha256,
    )


def scan_embeddings(
    folders: list[Path] | None = None, *, hash_cache: HashCache | None = None, compute_hashes: bool = False
) -> list[EmbeddingInfo]:
    """Every embedding in ``folders`` (default: the data dir's ``embeddings/`` and the user's own)."""
    roots = [Path(folder) for folder in folders] if folders is not None else library_folders(EMBEDDING)
    seen: set[Path] = set()
    infos = []
    for root in roots:
        for path in find_models(root, EMBEDDING):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            infos.append(embedding_info(path, hash_cache, compute_hash=compute_hashes))
    return sorted(infos, key=lambda info: info.name.lower())
