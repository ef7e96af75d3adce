"""The upscalers in the library: the data dir's ``upscalers/`` and folders the user added
(A1111's ``models/ESRGAN``, ComfyUI's ``models/upscale_models``), described from tensor names and
shapes only, so listing a folder of 60 MB files reads a few kilobytes of each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ldm_studio.engine.catalog import UPSCALER, find_models, library_folders
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.upscalers import detection, files
from ldm_studio.engine.upscalers.loading import SPANDREL_HINT, UpscalerModel, load_upscaler, spandrel_module
from ldm_studio.engine.upscalers.resize import PixelResize, builtin_resize


@dataclass(frozen=True)
class UpscalerInfo:
    name: str
    path: Path
    architecture: str  # "ESRGAN", "Real-ESRGAN compact", "SwinIR"…, "unknown" or "unreadable"
    scale: int | None  # None where only loading the file tells (architectures spandrel runs)
    size: int  # bytes on disk
    builtin: bool = False  # runs without spandrel
    problem: str = ""  # why it cannot be opened here; empty when it can (or may, through spandrel)


def describe_upscaler(path: Path, *, spandrel_available: bool | None = None) -> UpscalerInfo:
    path = Path(path)
    size = path.stat().st_size if path.exists() else 0
    try:
        detected = detection.detect(files.tensor_shapes(path))
    except ModelLoadError as error:
        return UpscalerInfo(path.stem, path, "unreadable", None, size, problem=str(error))
    builtin = detected.builtin and bool(detected.options)
    problem = ""
    if not builtin:
        available = spandrel_module() is not None if spandrel_available is None else spandrel_available
        if detected.architecture == "unknown":
            problem = "not an upscaler LDM Studio recognises" + ("" if available else f"; {SPANDREL_HINT}")
        elif not available:
            problem = f"a {detected.architecture} upscaler; to open it, {SPANDREL_HINT}"
    return UpscalerInfo(path.stem, path, detected.architecture, detected.scale, size, builtin, problem)


def upscaler_folders() -> list[Path]:
    """The data dir's ``upscalers/`` folder, then the folders the user added."""
    return library_folders(UPSCALER)


def scan_upscalers(folders: list[Path] | None = None) -> list[UpscalerInfo]:
    """Every upscaler file in ``folders`` (default: the library's), sorted by name, each once."""
    found: dict[Path, Path] = {}
    for folder in upscaler_folders() if folders is None else folders:
        for path in find_models(Path(folder), UPSCALER):
            found.setdefault(path.resolve(), path)
    available = spandrel_module() is not None
    infos = [describe_upscaler(path, spandrel_available=available) for path in found.values()]
    return sorted(infos, key=lambda info: (info.name.lower(), str(info.path)))


def find_upscaler(
    name_or_path: str, folders: list[Path] | None = None, *, device: str = "cpu"
) -> UpscalerModel | PixelResize:
    """A built-in resize by name ("Lanczos"), an upscaler file by path, or one in the library by name."""
    builtin = builtin_resize(name_or_path)
    if builtin is not None:
        return builtin
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return load_upscaler(path, device=device)
    matches = [info for info in scan_upscalers(folders) if info.name.lower() == name_or_path.strip().lower()]
    if not matches:
        raise ModelLoadError(
            f"no upscaler called {name_or_path!r}: not a file, not one of Lanczos, Bicubic, Nearest, "
            "and not in the upscalers folders"
        )
    return load_upscaler(matches[0].path, device=device)
