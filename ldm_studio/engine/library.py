"""The model library: every checkpoint and diffusers folder in the user's model folders, described.

Built on the catalogue (``engine.catalog``: which files are models, where they are, how they are
hashed); this adds what needs reading the files: family, loadability, prediction type and the
A1111-compatible "AutoV2" short hash that goes into PNG metadata as ``Model hash``. Scanning is
meant for a background thread (no Qt here). Hashes and inspection results are cached by path, size
and modification time, so a multi-GB file is read once, not at every scan.

A diffusers folder has no A1111 hash; its hash is the SHA-256 of a manifest listing every file's
relative path and SHA-256, sorted. That covers everything that changes its images, gives the same
value for the same model wherever it is copied, and reuses the per-file cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ldm_studio.engine.catalog import (
    AUTOV2_LENGTH,
    CHECKPOINT,
    CHECKPOINT_SUFFIXES,
    CHUNK_BYTES,  # noqa: F401 - re-exported for callers of this module
    add_folder,
    bundled_models_dir,
    family_label,
    file_sha256,
    file_type,
    find_all,
    library_folders,
    model_name,
    remove_folder,
    user_folders,
)
from ldm_studio.engine.checkpoints.settings import get_model_settings
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.paths import user_dirs, write_json_atomically

log = logging.getLogger(__name__)

# Kept under their old names for callers of this module; the catalogue owns them now.
MODEL_SUFFIXES = CHECKPOINT_SUFFIXES
SHORT_HASH_LENGTH = AUTOV2_LENGTH
FOLDERS_FILE = CHECKPOINT.folders_filename
CACHE_FILE = "model_library_cache.json"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    family: str  # an engine.catalog.FAMILIES key; "unreadable" for damaged files
    size: int  # bytes on disk
    file_type: str  # "safetensors", "ckpt" or "diffusers"
    short_hash: str  # AutoV2; "" when hashing was skipped
    loadable: bool
    reason: str  # why it cannot load
    prediction_type: str = "epsilon"
    bundled: bool = False  # shipped with LDM Studio

    @property
    def family_label(self) -> str:
        return family_label(self.family)


class LibraryCache:
    """SHA-256 and inspection summaries per file, valid while its size and mtime are unchanged."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        self._dirty = False
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                self._entries = {k: v for k, v in data.items() if isinstance(v, dict)}
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            log.warning("ignoring unreadable model cache %s: %s", path, error)

    def _record(self, file: Path) -> tuple[str, dict[str, Any]]:
        stat = file.stat()
        key = str(file.resolve())
        with self._lock:
            record = self._entries.get(key)
            if not record or record.get("size") != stat.st_size or record.get("mtime_ns") != stat.st_mtime_ns:
                record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
                self._entries[key] = record
        return key, record

    def get(self, file: Path, field: str) -> Any:
        return self._record(file)[1].get(field)

    def put(self, file: Path, field: str, value: Any) -> None:
        _, record = self._record(file)
        with self._lock:
            record[field] = value
            self._dirty = True

    def sha256(self, file: Path, should_stop: Callable[[], bool] | None = None) -> str:
        cached = self.get(file, "sha256")
        if cached:
            return str(cached)
        digest = file_sha256(file, should_stop)
        self.put(file, "sha256", digest)
        return digest

    def save(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            entries = {key: dict(value) for key, value in self._entries.items()}
            self._dirty = False
        try:
            write_json_atomically(self.path, entries)
        except OSError as error:
            log.warning("could not save the model cache %s: %s", self.path, error)


def default_cache_path() -> Path:
    return user_dirs().cache / CACHE_FILE


def folder_sha256(folder: Path, cache: LibraryCache, should_stop: Callable[[], bool] | None = None) -> str:
    manifest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and not _hidden(p, folder)):
        relative = file.relative_to(folder).as_posix()
        manifest.update(f"{relative}\0{cache.sha256(file, should_stop)}\n".encode())
    return manifest.hexdigest()


def _hidden(file: Path, root: Path) -> bool:
    return any(part.startswith(".") or part == "__pycache__" for part in file.relative_to(root).parts)


def short_hash(path: Path, cache_path: Path | None = None) -> str:
    """The AutoV2 short hash of a checkpoint (or the manifest hash of a diffusers folder)."""
    cache = LibraryCache(cache_path or default_cache_path())
    path = Path(path)
    digest = folder_sha256(path, cache) if path.is_dir() else cache.sha256(path)
    cache.save()
    return CHECKPOINT.short_hash(digest)


def user_model_folders() -> list[Path]:
    """Folders the user added to the library (the default models folder is always included)."""
    return user_folders(CHECKPOINT)


def add_model_folder(folder: Path) -> list[Path]:
    return add_folder(folder, CHECKPOINT)


def remove_model_folder(folder: Path) -> list[Path]:
    return remove_folder(folder, CHECKPOINT)


class ModelLibrary:
    def __init__(self, folders: list[Path], cache_path: Path, *, bundled_dir: Path | None = None) -> None:
        self.folders = [Path(f).expanduser() for f in folders]
        self.cache = LibraryCache(cache_path)
        self.bundled_dir = bundled_dir

    @classmethod
    def default(cls) -> ModelLibrary:
        """The user's models folder, the folders they added, and the models shipped with LDM Studio."""
        return cls(library_folders(CHECKPOINT), default_cache_path(), bundled_dir=bundled_models_dir())

    def candidates(self) -> list[tuple[Path, bool]]:
        """(path, bundled) for every checkpoint file and diffusers folder, without duplicates."""
        return [(found.path, found.bundled) for found in find_all(self.folders, self.bundled_dir, CHECKPOINT)]

    def scan(
        self,
        *,
        with_hashes: bool = True,
        should_stop: Callable[[], bool] | None = None,
        on_entry: Callable[[ModelEntry], None] | None = None,
    ) -> list[ModelEntry]:
        """Inspect (and hash) every model; ``on_entry`` sees each as it is ready."""
        entries = []
        try:
            for path, bundled in self.candidates():
                if should_stop is not None and should_stop():
                    break
                try:
                    entry = self._entry(path, bundled, with_hashes, should_stop)
                except InterruptedError:
                    break
                entries.append(entry)
                if on_entry is not None:
                    on_entry(entry)
        finally:
            self.cache.save()
        return entries

    def _entry(
        self, path: Path, bundled: bool, with_hashes: bool, should_stop: Callable[[], bool] | None
    ) -> ModelEntry:
        saved = get_model_settings(path).get("prediction_type")
        summary = self._summary(path, saved_prediction=saved)
        digest = ""
        if with_hashes and summary["family"] != "unreadable":
            try:
                if path.is_dir():
                    digest = folder_sha256(path, self.cache, should_stop)
                else:
                    digest = self.cache.sha256(path, should_stop)
            except OSError as error:
                log.warning("could not hash %s: %s", path, error)
        return ModelEntry(
            name=model_name(path),
            path=path,
            family=summary["family"],
            size=summary["size"],
            file_type=summary["file_type"],
            short_hash=CHECKPOINT.short_hash(digest),
            loadable=summary["loadable"],
            reason=summary["reason"],
            prediction_type=saved or summary.get("prediction_type", "epsilon"),
            bundled=bundled,
        )

    def _summary(self, path: Path, saved_prediction: str | None) -> dict[str, Any]:
        """What inspect_model says, cached per file. The cached prediction type is the guess made
        without the user's setting, so clearing that setting brings the guess back."""
        from ldm_studio.engine.checkpoints import inspect_model
        from ldm_studio.engine.checkpoints.prediction import SAVED_SOURCE

        cached = None if path.is_dir() else self.cache.get(path, "summary")
        if cached and ("prediction_type" in cached or saved_prediction):
            return cached
        try:
            info = inspect_model(path)
            summary = {
                "family": info.family,
                "size": info.file_size,
                "file_type": info.file_type,
                "loadable": info.loadable,
                "reason": info.reason,
            }
            if info.prediction_source != SAVED_SOURCE:
                summary["prediction_type"] = info.prediction_type
        except ModelLoadError as error:
            summary = {
                "family": "unreadable",
                "size": path.stat().st_size if path.is_file() else 0,
                "file_type": file_type(path),
                "loadable": False,
                "reason": str(error),
                "prediction_type": "epsilon",
            }
        if not path.is_dir():
            self.cache.put(path, "summary", summary)
        return summary


def entry_to_dict(entry: ModelEntry) -> dict[str, Any]:
    data = asdict(entry)
    data["path"] = str(entry.path)
    data["family_label"] = entry.family_label
    return data
