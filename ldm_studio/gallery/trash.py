"""Deleting gallery images recoverably: the system trash when ``send2trash`` is installed, else our own.

The app trash is a folder in the user data dir; each deletion is a batch that ``restore`` can put back
(the gallery's undo). Files are moved with ``os.replace`` on the same disk, or copied then removed
across disks, so a crash mid-way never loses an image.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TrashBatch:
    """One deletion: (original path, where it went). Empty ``moved`` when the system trash took it."""

    moved: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    system_trash: bool = False

    @property
    def deleted(self) -> list[Path]:
        return [original for original, _ in self.moved]

    @property
    def can_undo(self) -> bool:
        return not self.system_trash and bool(self.moved)


def system_trash_available() -> bool:
    return importlib.util.find_spec("send2trash") is not None


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError:
        # Another disk: copy first, remove the original only once the copy is complete.
        shutil.copy2(source, target)
        source.unlink()


class Trash:
    def __init__(self, folder: str | Path | None = None, *, use_system_trash: bool | None = None) -> None:
        if folder is None:
            from ldm_studio.paths import user_dirs

            folder = user_dirs().data / "trash"
        self.folder = Path(folder)
        self.use_system_trash = system_trash_available() if use_system_trash is None else use_system_trash

    def delete(self, paths: list[Path]) -> TrashBatch:
        """Move these files to the trash; report what moved and what could not (with why)."""
        if self.use_system_trash:
            return self._delete_to_system(paths)
        batch_folder = self.folder / secrets.token_hex(6)
        moved, failed = [], []
        for number, path in enumerate(paths):
            target = batch_folder / f"{number:05d}-{path.name}"
            try:
                _move(path, target)
                moved.append((path, target))
            except OSError as error:
                failed.append((path, error.strerror or str(error)))
        return TrashBatch(moved=moved, failed=failed)

    def _delete_to_system(self, paths: list[Path]) -> TrashBatch:
        from send2trash import send2trash

        moved, failed = [], []
        for path in paths:
            try:
                send2trash(str(path))
                moved.append((path, path))
            except OSError as error:
                failed.append((path, str(error)))
        return TrashBatch(moved=moved, failed=failed, system_trash=True)

    def restore(self, batch: TrashBatch) -> list[Path]:
        """Undo: put every file of an app-trash batch back where it was; return those restored."""
        if batch.system_trash:
            return []
        restored = []
        for original, trashed in batch.moved:
            if original.exists() or not trashed.exists():
                continue  # never overwrite a file that took its place
            with contextlib.suppress(OSError):
                _move(trashed, original)
                restored.append(original)
        return restored

    def empty(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
