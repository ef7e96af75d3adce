"""The LoRA library: what each file in the LoRA folders is, read from its header only.

Per file: the name prompts use (the file stem, as A1111's ``<lora:name:1>``), base family, network type,
rank, alpha, size, A1111's short hash, trigger words and a preview image. The tensors are not read:
for a ``.safetensors`` the header gives the shapes (only the scalar ``alpha`` values are read), a
pickle is memory-mapped. A file that cannot be used is still listed, with its ``error`` sentence.

Trigger words, first found wins: A1111's per-file user metadata (``name.json``, "activation text"),
SAI's ``modelspec.trigger_phrase``, our trainer's ``ss_trigger_word``, Civitai Helper's
``name.civitai.info`` ("trainedWords"); otherwise the most frequent training tags from kohya's
``ss_tag_frequency``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ldm_studio.engine.catalog import LORA, find_models, library_folders
from ldm_studio.engine.lora.errors import LoraError
from ldm_studio.engine.lora.files import lora_from_tensors
from ldm_studio.engine.lora.fit import lora_family
from ldm_studio.engine.lora.hashing import (
    HashCache,
    sha256_after_header,
    short_hash,
    stored_lora_hash,
    whole_file_sha256,
)
from ldm_studio.engine.lora.naming import PART_LABELS
from ldm_studio.engine.lora.network import LoraNetwork

log = logging.getLogger(__name__)
PREVIEW_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
TOP_TAGS = 8


@dataclass(frozen=True)
class LoraInfo:
    name: str  # the file stem: what <lora:name:weight> refers to
    path: Path
    size: int
    family: str = ""  # "sd1", "sd2", "sdxl" or "" when neither shapes nor metadata tell
    network_type: str = ""  # LoRA, LoCon, LoHa, LoKr, full
    rank: int | None = None
    alpha: float | None = None
    layers: dict[str, int] = field(default_factory=dict)  # per part label ("UNet": 192)
    sha256: str = ""  # full digest, where known (see ``with_hash``)
    trigger_words: tuple[str, ...] = ()
    top_tags: tuple[str, ...] = ()
    output_name: str = ""  # kohya's ss_output_name (A1111's alias)
    base_model: str = ""  # the checkpoint it was trained on (ss_sd_model_name / modelspec)
    description: str = ""
    preview: Path | None = None
    error: str = ""  # why it cannot be used, in a sentence

    @property
    def hash(self) -> str:
        """A1111's ``Lora hashes`` value: 12 hex digits, or "" until hashed."""
        return short_hash(self.sha256)

    def with_hash(self, cache: HashCache | None = None) -> LoraInfo:
        if self.sha256:
            return self
        cache = cache or HashCache()
        return replace(self, sha256=cache.digest("lora", self.path, lora_digest_function(self.path)))


def lora_digest_function(path: Path):  # noqa: ANN201 - a Callable[[Path], str]
    return sha256_after_header if Path(path).suffix.lower() == ".safetensors" else whole_file_sha256


def lora_sha256(path: Path, metadata: dict[str, str] | None = None, cache: HashCache | None = None) -> str:
    """The full digest A1111 shortens for ``Lora hashes`` (kohya's stored value when the file has one)."""
    stored = stored_lora_hash(metadata or {})
    if stored:
        return stored
    return (cache or HashCache()).digest("lora", Path(path), lora_digest_function(path))


def _header_network(path: Path) -> LoraNetwork:
    """The file's layers as meta tensors (shapes only) and real alpha scalars: nothing big is read."""
    from ldm_studio.engine.checkpoints.pickles import load_state_dict, sniff_format
    from ldm_studio.engine.checkpoints.tensors import read_safetensors_header
    from ldm_studio.engine.errors import ModelLoadError

    try:
        if sniff_format(path) == "safetensors":
            table = read_safetensors_header(path)
            scalars = [
                name
                for name, shape in table.shapes.items()
                if name.endswith((".alpha", ".scale")) and len(shape) <= 1
            ]
            tensors = {name: torch.empty(shape, device="meta") for name, shape in table.shapes.items()}
            if scalars:
                from safetensors import safe_open

                with safe_open(str(path), framework="pt", device="cpu") as handle:
                    for name in scalars:
                        tensors[name] = handle.get_tensor(name)
            return lora_from_tensors(tensors, path.stem, table.metadata)
        return lora_from_tensors(load_state_dict(path, mmap=True), path.stem, {})
    except ModelLoadError as error:
        raise LoraError(str(error)) from error


def _sidecar_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _words(text: object) -> tuple[str, ...]:
    items = [str(item) for item in text] if isinstance(text, list) else str(text or "").split(",")
    return tuple(word.strip() for word in items if word and word.strip())


def top_tags(metadata: dict[str, str], limit: int = TOP_TAGS) -> tuple[str, ...]:
    """The most frequent caption tags of kohya's ``ss_tag_frequency`` ({folder: {tag: count}}), merged."""
    try:
        folders = json.loads(metadata.get("ss_tag_frequency", "") or "{}")
    except ValueError:
        return ()
    counts: Counter[str] = Counter()
    if isinstance(folders, dict):
        for tags in folders.values():
            if isinstance(tags, dict):
                for tag, count in tags.items():
                    if str(tag).strip() and isinstance(count, (int, float)):
                        counts[str(tag).strip()] += int(count)
    return tuple(tag for tag, _ in counts.most_common(limit))


def trigger_words(path: Path, metadata: dict[str, str]) -> tuple[str, ...]:
    user = _sidecar_json(path.with_suffix(".json"))
    for candidate in (
        user.get("activation text"),
        metadata.get("modelspec.trigger_phrase"),
        metadata.get("ss_trigger_word"),  # LDM Studio's own trainer (training.lora_export)
        _sidecar_json(path.with_name(f"{path.stem}.civitai.info")).get("trainedWords"),
    ):
        words = _words(candidate)
        if words:
            return words
    return ()


def find_preview(path: Path) -> Path | None:
    """``name.png`` / ``name.preview.png`` (and jpg/jpeg/webp) beside the file: A1111 and Civitai Helper."""
    for suffix in PREVIEW_SUFFIXES:
        for candidate in (path.with_name(path.stem + suffix), path.with_name(f"{path.stem}.preview{suffix}")):
            if candidate.is_file():
                return candidate
    return None


def lora_info(path: Path, hash_cache: HashCache | None = None, *, compute_hash: bool = False) -> LoraInfo:
    """Describe one LoRA file from its header; never raises for a bad file (``error`` says why)."""
    path = Path(path)
    size = path.stat().st_size if path.exists() else 0
    base = LoraInfo(name=path.stem, path=path, size=size, preview=find_preview(path))
    try:
        network = _header_network(path)
    except LoraError as error:
        return replace(base, error=str(error))
    metadata = network.metadata
    sha256 = stored_lora_hash(metadata)
    if not sha256 and hash_cache is not None:
        sha256 = hash_cache.lookup("lora", path)
        if not sha256 and compute_hash:
            sha256 = lora_sha256(path, metadata, hash_cache)
    user = _sidecar_json(path.with_suffix(".json"))
    return replace(
        base,
        family=lora_family(network),
        network_type=network.network_type,
        rank=network.rank,
        alpha=network.alpha,
        layers={PART_LABELS.get(part, part): network.count(part) for part in sorted(network.parts())},
        sha256=sha256,
        trigger_words=trigger_words(path, metadata),
        top_tags=top_tags(metadata),
        output_name=metadata.get("ss_output_name", ""),
        base_model=metadata.get("ss_sd_model_name", "") or metadata.get("modelspec.title", ""),
        description=str(user.get("description", "") or metadata.get("modelspec.description", "")),
    )


def scan_loras(
    folders: list[Path] | None = None, *, hash_cache: HashCache | None = None, compute_hashes: bool = False
) -> list[LoraInfo]:
    """Every LoRA file in ``folders`` (default: the data dir's ``loras/`` and the user's added folders)."""
    roots = [Path(folder) for folder in folders] if folders is not None else library_folders(LORA)
    seen: set[Path] = set()
    infos = []
    for root in roots:
        for path in find_models(root, LORA):
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            infos.append(lora_info(path, hash_cache, compute_hash=compute_hashes))
    return sorted(infos, key=lambda info: info.name.lower())
