"""Saving finished images into the gallery folder: dated folders, readable names, atomic writes.

A file appears under its final ``.png`` name only once it is complete and on disk: the bytes go to a
hidden temp file in the same folder, are fsynced, then hard-linked to the final name. ``os.link``
fails when the name exists, which makes claiming a name atomic across processes without a lock; on
file systems without hard links an ``O_EXCL`` claim file plays the same role.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import time
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import encode_png

TEMP_PREFIX = ".ldm-"
TEMP_SUFFIX = ".part"
CLAIM_SUFFIX = ".claim"
SLUG_WORDS = 6
SLUG_CHARS = 40
# Temp files older than this are leftovers of a killed process; younger ones may be in flight.
STALE_TEMP_SECONDS = 3600
MAX_NAME_ATTEMPTS = 1000


class GallerySaveError(OSError):
    """The image could not be written; the message says why in words a user can act on."""

    def __init__(self, message: str, errno_code: int | None = None) -> None:
        super().__init__(errno_code, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def prompt_slug(prompt: str) -> str:
    """A short file-name-safe summary: ``"A cat, on a mat!"`` → ``"a-cat-on-a-mat"``."""
    ascii_text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())[:SLUG_WORDS]
    return "-".join(words)[:SLUG_CHARS].strip("-") or "untitled"


def _explain(error: OSError, folder: Path) -> GallerySaveError:
    code = error.errno
    if code == errno.ENOSPC or code == getattr(errno, "EDQUOT", None):
        reason = "the disk is full"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "the folder is read-only or you lack permission to write there"
    elif code == errno.ENAMETOOLONG:
        reason = "the path is too long"
    else:
        reason = error.strerror or str(error)
    return GallerySaveError(f"Could not save the image in {folder}: {reason}.", code)


def _fsync_folder(folder: Path) -> None:
    """Make the new directory entry durable (POSIX); Windows cannot open folders and needs no call."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomic_exclusive(data: bytes, wanted: Path) -> Path:
    """Write ``data`` to ``wanted`` (or ``stem-2``, ``stem-3``, ... if taken) atomically; return the path.

    Whatever happens — a crash, SIGKILL, a full disk — no partial file ever carries a ``.png`` name.
    """
    folder = wanted.parent
    temp = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
    try:
        with open(temp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        final = _claim_name(temp, wanted)
        _fsync_folder(folder)
        return final
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _candidates(wanted: Path):
    yield wanted
    for number in range(2, MAX_NAME_ATTEMPTS):
        yield wanted.with_name(f"{wanted.stem}-{number}{wanted.suffix}")


def _claim_name(temp: Path, wanted: Path) -> Path:
    for candidate in _candidates(wanted):
        try:
            os.link(temp, candidate)
            return candidate
        except FileExistsError:
            continue
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            return _claim_name_without_links(temp, wanted)
    raise FileExistsError(errno.EEXIST, f"no free file name near {wanted.name}")


def _claim_name_without_links(temp: Path, wanted: Path) -> Path:
    """For file systems without hard links (FAT, some network shares): claim, then rename."""
    for candidate in _candidates(wanted):
        claim = candidate.with_name(candidate.name + CLAIM_SUFFIX)
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        try:
            if candidate.exists():
                continue
            os.replace(temp, candidate)
            return candidate
        finally:
            claim.unlink(missing_ok=True)
    raise FileExistsError(errno.EEXIST, f"no free file name near {wanted.name}")


class GalleryStore:
    """The gallery folder on disk. ``save`` is safe to call from any thread or process."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder_for(self, when: datetime) -> Path:
        return self.root / when.strftime("%Y-%m-%d")

    def file_name(self, request: GenerationRequest, when: datetime) -> str:
        seed = "noseed" if request.seed is None else str(request.seed)
        return f"{when:%Y%m%d-%H%M%S}-{seed}-{prompt_slug(request.prompt)}.png"

    def save(
        self,
        image: Image.Image,
        request: GenerationRequest,
        *,
        model_name: str,
        model_hash: str,
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Write one image with its metadata; return its path. Raises GallerySaveError on failure.

        ``request`` should describe this one image (see ``metadata.image_request`` for batches). On
        failure nothing is left behind and the caller still holds the image.
        """
        created = time.time()
        when = datetime.fromtimestamp(created)
        folder = self.folder_for(when)
        data = encode_png(
            image, request, model_name=model_name, model_hash=model_hash, extra=extra, created=created
        )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return write_atomic_exclusive(data, folder / self.file_name(request, when))
        except OSError as error:
            raise _explain(error, folder) from error

    def remove_stale_temp_files(self, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Delete temp and claim files left by killed processes; return how many went."""
        removed = 0
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - older_than
        for folder in [self.root, *(p for p in self.root.iterdir() if p.is_dir())]:
            for leftover in [*folder.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"), *folder.glob(f"*{CLAIM_SUFFIX}")]:
                with contextlib.suppress(OSError):
                    if leftover.stat().st_mtime < cutoff:
                        leftover.unlink()
                        removed += 1
        return removed
