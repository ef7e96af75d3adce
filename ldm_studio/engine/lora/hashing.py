"""The short hashes A1111 writes in ``Lora hashes`` and ``TI hashes``, computed once per file version.

A1111 (``extensions-builtin/Lora/network.py``, ``modules/textual_inversion``, ``modules/hashes.py``):

- a LoRA ``.safetensors``: SHA-256 of the file *after* its header (8-byte length + JSON), kohya's
  "addnet" hash, so editing the metadata keeps the hash; kohya stores the same value as
  ``sshs_model_hash`` and A1111 takes that when present. Other LoRA files: SHA-256 of the whole file;
- a textual-inversion embedding (any format): SHA-256 of the whole file;
- both are shown as the first 12 hex digits.

Hashing a 150 MB LoRA takes about a second, so the full digest is cached by (path, size, mtime) in a
small JSON file in the cache folder; a changed file is hashed again.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path

from ldm_studio.engine.catalog import NETWORK_HASH_LENGTH, file_sha256
from ldm_studio.paths import user_dirs, write_json_atomically

log = logging.getLogger(__name__)
_SHA256 = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
HASH_CACHE_FILE = "network_hashes.json"


def sha256_after_header(path: Path, should_stop: Callable[[], bool] | None = None) -> str:
    """kohya's / A1111's hash of a safetensors file: SHA-256 of every byte after the JSON header."""
    with Path(path).open("rb") as stream:
        header_length = int.from_bytes(stream.read(8), "little")
    return file_sha256(path, should_stop, start=8 + header_length)


def whole_file_sha256(path: Path, should_stop: Callable[[], bool] | None = None) -> str:
    return file_sha256(path, should_stop)


def stored_lora_hash(metadata: dict[str, str]) -> str:
    """The ``sshs_model_hash`` kohya wrote into the file, if it looks like a SHA-256."""
    value = str(metadata.get("sshs_model_hash", "")).strip()
    if _SHA256.match(value):
        return value.lower().removeprefix("0x")
    return ""


def short_hash(sha256_hex: str) -> str:
    return sha256_hex[:NETWORK_HASH_LENGTH]


class HashCache:
    """Full SHA-256 digests of network files by (kind, path, size, mtime); thread-safe, persisted as JSON."""

    def __init__(self, file: Path | None = None) -> None:
        self.file = file
        self._lock = threading.Lock()
        self._entries: dict[str, dict] | None = None

    @classmethod
    def default(cls) -> HashCache:
        return cls(user_dirs().cache / HASH_CACHE_FILE)

    def _load(self) -> dict[str, dict]:
        if self._entries is None:
            self._entries = {}
            if self.file is not None and self.file.is_file():
                try:
                    data = json.loads(self.file.read_text(encoding="utf-8"))
                    self._entries = data if isinstance(data, dict) else {}
                except (OSError, ValueError) as error:
                    log.warning("ignoring unreadable hash cache %s: %s", self.file, error)
        return self._entries

    @staticmethod
    def _key(kind: str, path: Path) -> str:
        return f"{kind}:{Path(path).resolve()}"

    def lookup(self, kind: str, path: Path) -> str:
        """The cached digest, or "" when the file is unknown or changed since it was hashed."""
        try:
            stat = Path(path).stat()
        except OSError:
            return ""
        with self._lock:
            entry = self._load().get(self._key(kind, path))
        if (
            isinstance(entry, dict)
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
        ):
            return str(entry.get("sha256", ""))
        return ""

    def store(self, kind: str, path: Path, sha256_hex: str) -> None:
        stat = Path(path).stat()
        with self._lock:
            entries = self._load()
            entries[self._key(kind, path)] = {
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "sha256": sha256_hex,
            }
            if self.file is not None:
                try:
                    write_json_atomically(self.file, entries)
                except OSError as error:
                    log.warning("could not save the hash cache %s: %s", self.file, error)

    def digest(self, kind: str, path: Path, compute: Callable[[Path], str]) -> str:
        cached = self.lookup(kind, path)
        if cached:
            return cached
        value = compute(Path(path))
        self.store(kind, path, value)
        return value
