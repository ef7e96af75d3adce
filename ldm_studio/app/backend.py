"""What the worker thread drives: the real torch engine, or a scripted fake in tests.

The app layer never imports torch itself; ``TorchBackend`` imports the engine lazily, on the worker
thread, so the window paints before torch has loaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class ModelSummary:
    """What the window shows about the loaded model."""

    name: str
    path: str
    family: str
    device: str
    dtype: str
    native_size: int
    prediction_type: str = "epsilon"
    model_hash: str = ""
    captions: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()


class Backend(Protocol):
    def load(self, path: Path, device: str, dtype: str) -> ModelSummary: ...

    def generate(
        self, request: Any, on_event: Callable[[Any], None], should_stop: Callable[[], bool], preview: Any
    ) -> Any: ...

    def unload(self) -> None: ...


def _read_lines(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        return ()
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip())


class TorchBackend:
    """The real engine. Lives on, and is only touched from, the worker thread."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self._model: Any = None
        self._cache_dir = cache_dir
        self._threads_set = False

    def _set_threads(self) -> None:
        # torch's thread count is per thread: leave the GUI thread a core where there is more than one.
        if self._threads_set:
            return
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
        self._threads_set = True

    def load(self, path: Path, device: str, dtype: str) -> ModelSummary:
        self._set_threads()
        from ldm_studio.engine.loader import load_model

        self.unload()
        model = load_model(path, device=device, dtype=dtype, cache_dir=self._cache_dir)
        self._model = model
        folder = model.path if model.path.is_dir() else model.path.parent
        return ModelSummary(
            name=model.name,
            path=str(model.path),
            family=model.family,
            device=model.placement.device.type.upper(),
            dtype=str(model.placement.dtype).removeprefix("torch."),
            native_size=model.native_size,
            prediction_type=model.prediction_type,
            model_hash=model.model_hash,
            captions=_read_lines(folder / "captions.txt") if model.path.is_dir() else (),
            examples=_read_lines(folder / "examples.txt") if model.path.is_dir() else (),
        )

    def generate(self, request, on_event, should_stop, preview):
        from ldm_studio.engine.generate import generate

        if self._model is None:
            from ldm_studio.engine.events import Failed

            failure = Failed("No model is loaded: open a model first.")
            on_event(failure)
            return failure
        return generate(self._model, request, on_event, should_stop, preview)

    def unload(self) -> None:
        if self._model is not None:
            self._model.unload()
            self._model = None
