"""The model library: every checkpoint and diffusers folder in the user's model folders.

Scanning is meant for a background thread (no Qt here). Each entry carries the A1111-compatible
"AutoV2" short hash (first 10 hex digits of the SHA-256 of the whole file), which goes into PNG
metadata as ``Model hash``. Hashes and inspection results are cached by path, size and
modification time, so a multi-GB file is read once, not at every scan.

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

from ldm_studio.engine.checkpoints.settings import get_model_settings, write_json_atomically
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.paths import resource, user_dirs

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".safetensors", ".ckpt")
FOLDERS_FILE = "model_folders.json"
CACHE_FILE = "model_library_cache.json"
SHORT_HASH_LENGTH = 10
CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    family: str  # see engine.checkpoints.FAMILY_LABELS; "unreadable" for damaged files
    size: int  # bytes on disk
    file_type: str  # "safetensors", "ckpt" or "diffusers"
    short_hash: str  # AutoV2; "" when hashing was skipped
    loadable: bool
    reason: str  # why it cannot load
    prediction_type: str = "epsilon"
    bundled: bool = False  # shipped with LDM Studio


def file_sha256(path: Path, should_stop: Callable[[], bool] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
            if should_stop is not None and should_stop():
                raise InterruptedError("hashing cancelled")
    return digest.hexdigest()


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
    return digest[:SHORT_HASH_LENGTH]


def user_model_folders() -> list[Path]:
    """Folders the user added to the library (the default models folder is always included)."""
    try:
        data = json.loads((user_dirs().config / FOLDERS_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
        return []
    return [Path(item) for item in data if isinstance(item, str)] if isinstance(data, list) else []


def add_model_folder(folder: Path) -> list[Path]:
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise ModelLoadError(f"{folder} is not a folder")
    folders = user_model_folders()
    if folder not in folders:
        folders.append(folder)
    write_json_atomically(user_dirs().config / FOLDERS_FILE, [str(f) for f in folders])
    return folders


def remove_model_folder(folder: Path) -> list[Path]:
    folder = Path(folder).expanduser().resolve()
    folders = [f for f in user_model_folders() if f != folder]
    write_json_atomically(user_dirs().config / FOLDERS_FILE, [str(f) for f in folders])
    return folders


def bundled_models_dir() -> Path | None:
    try:
        return resource("models")
    except FileNotFoundError:
        return None


class ModelLibrary:
    def __init__(self, folders: list[Path], cache_path: Path, *, bundled_dir: Path | None = None) -> None:
        self.folders = [Path(f).expanduser() for f in folders]
        self.cache = LibraryCache(cache_path)
        self.bundled_dir = bundled_dir

    @classmethod
    def default(cls) -> ModelLibrary:
        """The user's models folder, the folders they added, and the models shipped with LDM Studio."""
        dirs = user_dirs()
        folders = [dirs.models, *user_model_folders()]
        return cls(folders, default_cache_path(), bundled_dir=bundled_models_dir())

    def candidates(self) -> list[tuple[Path, bool]]:
        """(path, bundled) for every checkpoint file and diffusers folder, without duplicates."""
        found: dict[Path, bool] = {}
        roots = [(folder, False) for folder in self.folders]
        if self.bundled_dir is not None:
            roots.append((self.bundled_dir, True))
        for root, bundled in roots:
            for path in _walk(root):
                found.setdefault(path.resolve(), bundled)
        return sorted(found.items(), key=lambda item: (not item[1], item[0].name.lower()))

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
            name=path.name if path.is_dir() else path.stem,
            path=path,
            family=summary["family"],
            size=summary["size"],
            file_type=summary["file_type"],
            short_hash=digest[:SHORT_HASH_LENGTH],
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
                "file_type": "diffusers" if path.is_dir() else path.suffix.lower().lstrip("."),
                "loadable": False,
                "reason": str(error),
                "prediction_type": "epsilon",
            }
        if not path.is_dir():
            self.cache.put(path, "summary", summary)
        return summary


def _walk(root: Path) -> list[Path]:
    """Checkpoint files and diffusers folders under ``root`` (not descending into a model folder)."""
    if not root.is_dir():
        return []
    if (root / "model_index.json").is_file():
        return [root]
    found = []
    try:
        children = sorted(root.iterdir())
    except OSError as error:
        log.warning("cannot list %s: %s", root, error)
        return []
    for child in children:
        if child.name.startswith("."):
            continue
        if child.is_dir():
            found.extend(_walk(child))
        elif child.suffix.lower() in MODEL_SUFFIXES:
            found.append(child)
    return found


def entry_to_dict(entry: ModelEntry) -> dict[str, Any]:
    data = asdict(entry)
    data["path"] = str(entry.path)
    return data
