"""Finding models on disk: the bundled ones, the user's models folder and folders they added.

A cheap scan (names and paths only) that the window runs off the GUI thread. The model library
(engine.library) adds families and hashes on top when it is available.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ldm_studio.paths import resource

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    path: Path
    bundled: bool = False

    @property
    def label(self) -> str:
        kind = "folder" if self.path.is_dir() else self.path.suffix.lstrip(".")
        return f"{self.name}  ({'bundled' if self.bundled else kind})"


def bundled_models() -> list[Path]:
    try:
        root = resource("models")
    except FileNotFoundError:
        return []
    if not root.is_dir():
        return []
    return sorted(folder for folder in root.iterdir() if (folder / "model_index.json").is_file())


def default_model() -> Path | None:
    models = bundled_models()
    return models[0] if models else None


def scan_folder(folder: Path) -> list[Path]:
    """Diffusers folders (one level down, or the folder itself) and checkpoint files in ``folder``."""
    if not folder.is_dir():
        return []
    if (folder / "model_index.json").is_file():
        return [folder]
    found = []
    try:
        children = sorted(folder.iterdir())
    except OSError:
        return []
    for child in children:
        if child.is_dir() and (child / "model_index.json").is_file():
            found.append(child)
        elif child.is_file() and child.suffix.lower() in CHECKPOINT_SUFFIXES:
            found.append(child)
    return found


def discover(folders: list[Path]) -> list[CatalogEntry]:
    entries = [CatalogEntry(path.name, path, bundled=True) for path in bundled_models()]
    seen = {entry.path.resolve() for entry in entries}
    for folder in folders:
        for path in scan_folder(folder):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                entries.append(CatalogEntry(path.stem if path.is_file() else path.name, path))
    return entries
