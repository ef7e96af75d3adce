"""The window's quick model list: names and paths only, before the library adds families and hashes.

A thin wrapper over the engine's catalogue (``engine.catalog``), which owns the scanner, the suffixes
and the bundled models; this only adds the label the model menu shows while the full scan runs.
Same folders, same scanner, same order as ``engine.library.ModelLibrary.scan``, so the menu's
entries stay put when the detailed list replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ldm_studio.engine import catalog
from ldm_studio.engine.catalog import CHECKPOINT_SUFFIXES as CHECKPOINT_SUFFIXES  # re-exported
from ldm_studio.engine.catalog import bundled_models as bundled_models  # re-exported
from ldm_studio.engine.catalog import default_model as default_model  # re-exported


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    path: Path
    bundled: bool = False

    @property
    def label(self) -> str:
        kind = "folder" if self.path.is_dir() else self.path.suffix.lstrip(".")
        return f"{self.name}  ({'bundled' if self.bundled else kind})"


def scan_folder(folder: Path) -> list[Path]:
    """Model files and diffusers folders under ``folder`` (the catalogue's one scanner)."""
    return catalog.find_models(folder)


def discover(folders: list[Path]) -> list[CatalogEntry]:
    """The bundled models and every model in ``folders``, each once."""
    found = catalog.find_all(folders, catalog.bundled_models_dir())
    return [CatalogEntry(item.name, item.path, bundled=item.bundled) for item in found]
