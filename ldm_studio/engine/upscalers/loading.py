"""Upscaler model files turned into runnable networks.

ESRGAN / Real-ESRGAN files (the most common by far) run on LDM Studio's own networks. Every other
architecture (SwinIR, HAT, DAT, SPAN, OmniSR…) goes through ``spandrel`` when it is installed
(``pip install 'ldm-studio[upscalers]'``); without it such a file is refused with that sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.upscalers import detection, files, networks

log = logging.getLogger(__name__)

SPANDREL_HINT = "install the optional upscaler support with: pip install 'ldm-studio[upscalers]'"


@dataclass
class UpscalerModel:
    """A loaded upscaler: ``network`` maps a (1, 3, h, w) RGB tensor in [0, 1] to (1, 3, h·s, w·s)."""

    name: str
    architecture: str
    scale: int
    network: Callable[[Any], Any]
    device: str = "cpu"
    size_multiple: int = 1  # tiles are padded to a multiple of this before they go in
    path: Path | None = None


def spandrel_module() -> Any | None:
    """The ``spandrel`` package, or None when it is missing or cannot be imported here.

    spandrel imports every architecture it knows at once, two of them (LaMa, RestoreFormer) from
    torchvision; with a torchvision that does not match the installed torch that import raises a
    RuntimeError rather than ImportError, so both mean "not available".
    """
    try:
        import spandrel
    except (ImportError, RuntimeError, OSError) as error:
        log.debug("spandrel is not available: %s", error)
        return None
    return spandrel


def load_upscaler(
    path: Path, *, device: str = "cpu", spandrel: Callable[[], Any | None] = spandrel_module
) -> UpscalerModel:
    """Open an upscaler file; raise ModelLoadError with a sentence the user can act on."""
    import torch

    path = Path(path)
    tensors = files.load_tensors(path)
    detected = detection.detect({name: tuple(value.shape) for name, value in tensors.items()})
    if detected.builtin and detected.options:
        network = _builtin_network(path, detected, tensors)
        return UpscalerModel(
            name=path.stem,
            architecture=detected.architecture,
            scale=network.scale,
            network=network.to(device=device, dtype=torch.float32).eval(),
            device=device,
            size_multiple=network.size_multiple,
            path=path,
        )
    library = spandrel()
    if library is None:
        what = (
            f"a {detected.architecture} upscaler"
            if detected.architecture != "unknown"
            else "not an upscaler LDM Studio recognises"
        )
        raise ModelLoadError(f"{path.name} is {what}; to open it, {SPANDREL_HINT}")
    return _spandrel_model(library, path, tensors, device)


def _builtin_network(path: Path, detected: detection.Detected, tensors: dict[str, Any]) -> Any:
    if detected.architecture == detection.COMPACT:
        network = networks.SRVGGNetCompact(**detected.options)
    else:
        network = networks.RRDBNet(**detected.options)
    try:
        network.load_state_dict(detection.builtin_state_dict(detected, tensors), strict=True)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        first = (lines[1] if len(lines) > 1 else lines[0])[:200]  # line 0 only says "Error(s) in loading"
        raise ModelLoadError(
            f"{path.name} looks like an {detected.architecture} upscaler but its tensors do not fit ({first})"
        ) from error
    return network


def _spandrel_model(library: Any, path: Path, tensors: dict[str, Any], device: str) -> UpscalerModel:
    import torch

    try:
        descriptor = library.ModelLoader(torch.device(device)).load_from_state_dict(tensors)
    except Exception as error:  # spandrel raises UnsupportedModelError, KeyError, RuntimeError...
        raise ModelLoadError(f"{path.name} is not an upscaler spandrel recognises ({error})") from error
    if not isinstance(descriptor, library.ImageModelDescriptor) or descriptor.input_channels != 3:
        raise ModelLoadError(f"{path.name} is a {descriptor.architecture.name} model, not an RGB upscaler")
    descriptor.to(torch.float32).eval()
    return UpscalerModel(
        name=path.stem,
        architecture=descriptor.architecture.name,
        scale=int(descriptor.scale),
        network=descriptor,  # its __call__ pads to the architecture's size needs and crops back
        device=device,
        size_multiple=1,
        path=path,
    )
