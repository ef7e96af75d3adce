"""Which file a prompt's ``<lora:name>`` tag or embedding name means: the user's LoRA and embedding
folders (the data dir's ``loras/`` and ``embeddings/`` plus added folders such as A1111's
``models/Lora``), and files named on the command line (``--lora PATH``, ``--embedding PATH``).

Names match the file's stem as in A1111, exactly first, then ignoring case. The folders are walked
anew for each generation (a listing, no file is read), so a file dropped in a folder works at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ldm_studio.engine.catalog import EMBEDDING, LORA, ModelKind, find_models, library_folders

# GenerationRequest.extras key: files usable by name besides those in the folders (CLI --lora/--embedding)
NETWORK_FILES_KEY = "network_files"


def _by_stem(paths: Iterable[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in paths:
        found.setdefault(path.stem, path)
    return found


def output_name(path: Path) -> str:
    """kohya's ``ss_output_name`` from a safetensors header ("" when there is none or it cannot be read)."""
    from ldm_studio.engine.checkpoints.tensors import read_safetensors_header
    from ldm_studio.engine.errors import ModelLoadError

    if path.suffix.lower() != ".safetensors":
        return ""
    try:
        return str(read_safetensors_header(path).metadata.get("ss_output_name", ""))
    except (ModelLoadError, OSError):
        return ""


@dataclass
class NetworkLibrary:
    """LoRA and embedding files by name, for one generation."""

    lora_folders: list[Path] = field(default_factory=list)
    embedding_folders: list[Path] = field(default_factory=list)
    extra_files: list[Path] = field(default_factory=list)

    @classmethod
    def default(cls, extra_files: Iterable[str | Path] = ()) -> NetworkLibrary:
        return cls(library_folders(LORA), library_folders(EMBEDDING), [Path(p) for p in extra_files])

    def _files(self, folders: list[Path], kind: ModelKind) -> dict[str, Path]:
        extra = [path for path in self.extra_files if path.suffix.lower() in kind.suffixes]
        found = _by_stem(extra)
        for folder in folders:
            for name, path in _by_stem(find_models(folder, kind)).items():
                found.setdefault(name, path)
        return found

    def loras(self) -> dict[str, Path]:
        return self._files(self.lora_folders, LORA)

    def embeddings(self) -> dict[str, Path]:
        return self._files(self.embedding_folders, EMBEDDING)

    def lora_path(self, name: str, files: dict[str, Path] | None = None) -> Path | None:
        files = self.loras() if files is None else files
        if name in files:
            return files[name]
        folded = {stem.casefold(): path for stem, path in files.items()}
        if name.casefold() in folded:
            return folded[name.casefold()]
        # A1111 also finds a LoRA by the name its trainer gave it (kohya's ss_output_name)
        return next((path for path in files.values() if output_name(path) == name), None)

    def embeddings_named_in(self, texts: Iterable[str]) -> dict[str, Path]:
        """The embedding files whose name stands as a word in any of ``texts`` (A1111 triggers by name)."""
        joined = "\n".join(texts).casefold()
        if not joined.strip():
            return {}
        return {
            name: path
            for name, path in self.embeddings().items()
            if re.search(rf"(?<![\w-]){re.escape(name.casefold())}(?![\w-])", joined)
        }
