"""A scripted engine that replays events: the app layer tested in milliseconds, without torch."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ldm_studio.app.backend import ModelSummary
from ldm_studio.app.model_fit import ModelFit, fit_for
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.events import Cancelled, Failed, Finished, Started, Step
from ldm_studio.engine.flow_models import FlowVariant


@dataclass
class ScriptedBackend:
    """Each generate() plays ``steps`` Step events then Finished, unless told to fail.

    ``step_delay`` gives a test time to cancel; ``gate`` (if set) blocks each step until released.
    """

    size: int = 32
    step_delay: float = 0.0
    fail_with: str = ""
    fail_at_start: str = ""  # fail right after Started, before any step (e.g. a sampler refused)
    failing_paths: set[str] = field(default_factory=set)
    gate: threading.Event | None = None
    loads: list[str] = field(default_factory=list)
    requests: list = field(default_factory=list)
    branches: list = field(default_factory=list)  # the BranchPoint (or None) of each generation
    exports: list = field(default_factory=list)
    loaded: ModelSummary | None = None
    load_gate: threading.Event | None = None  # if set, each load waits for it
    lost_on_failure: set[str] = field(default_factory=set)  # loads that fail after the old model is gone
    decoded_steps: list[int] = field(default_factory=list)  # timeline steps decoded (app.timeline_decode)
    decode_gate: threading.Event | None = None  # if set, each step decode waits for it
    finished_elapsed: float = 0.01  # Finished.elapsed: what a preview-cost measurement reads
    previews: list = field(default_factory=list)  # the PreviewSettings each generation got
    tiny_decoders: tuple[str, ...] = ()  # the installed tiny decoders a loaded model is told of
    flow: FlowVariant | None = None  # load an SD 3 / FLUX model: its summary's fit (app.model_fit)

    def inspect(self, path: Path):
        from ldm_studio.app.backend import ModelPreview

        if str(path) in self.failing_paths:
            raise ModelLoadError(f"{Path(path).name} is not a model we can read")
        return ModelPreview(
            str(path), "Stable Diffusion 1.x", "safetensors", 2 << 30, 6 << 30, "epsilon", "default"
        )

    def load(self, path: Path, device: str, dtype: str) -> ModelSummary:
        self.loads.append(str(path))
        if self.load_gate is not None:
            self.load_gate.wait(10)
        if str(path) in self.lost_on_failure:
            self.loaded = None
            raise ModelLoadError(f"{Path(path).name} is damaged")
        if str(path) in self.failing_paths:
            raise ModelLoadError(f"{Path(path).name} is not a model we can read")
        self.loaded = ModelSummary(
            name=Path(path).name,
            path=str(path),
            family=self.flow.family if self.flow else "sd",
            device="CPU",
            dtype="float32",
            native_size=self.size,
            captions=("red heart", "cat face", "grinning face"),
            examples=("red heart", "cat face"),
            tiny_decoders=self.tiny_decoders,
            fit=fit_for(self.flow.family, self.flow) if self.flow else ModelFit(),
        )
        return self.loaded

    def current(self) -> ModelSummary | None:
        return self.loaded

    def generate(self, request, on_event, should_stop, preview, branch=None):
        branch_from = branch.step if branch is not None else None
        request = request.with_seed().replace(
            width=request.width or self.size, height=request.height or self.size
        )
        self.requests.append(request)
        self.branches.append(branch)
        self.previews.append(preview)
        on_event(Started(request, request.steps))
        if self.fail_at_start:
            failure = Failed(self.fail_at_start)
            on_event(failure)
            return failure
        started = time.perf_counter()
        for index in range((branch_from or 0) + 1, request.steps + 1):
            if self.gate is not None:
                self.gate.wait(5)
            if self.step_delay:
                time.sleep(self.step_delay)
            if should_stop():
                cancelled = Cancelled(request, index - 1)
                on_event(cancelled)
                return cancelled
            shade = int(255 * index / request.steps)
            preview_image = np.full((request.height, request.width, 3), shade, dtype=np.uint8)
            noisy = np.full_like(preview_image, 255 - shade)
            elapsed = time.perf_counter() - started
            on_event(Step(index, request.steps, elapsed, 1000.0 - index, None, preview_image, noisy))
        if self.fail_with:
            failure = Failed(self.fail_with)
            on_event(failure)
            return failure
        images = [
            Image.new("RGB", (request.width, request.height), (200, 40 * i % 255, 40))
            for i in range(request.batch_size)
        ]
        metadata = {"model_name": "fake", "model_hash": "0123456789"}
        if branch_from is not None:
            metadata["branch_step"] = branch_from
        # A stand-in trajectory: what the session needs to know is that this result can be continued.
        finished = Finished(
            images, request, metadata, self.finished_elapsed, trajectory=("steps", request.steps)
        )
        on_event(finished)
        return finished

    def export_timeline(self, finished, path, *, full, fps, hold, on_progress, should_stop):
        for done in range(1, 4):
            on_progress(done, 3)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(b"animation")
        self.exports.append((finished, Path(path), full, fps, hold))
        return Path(path)

    def walk(self, walk, folder, out, *, fps, on_frame, should_stop):
        for index in range(1, walk.frames + 1):
            if should_stop():
                from ldm_studio.engine.errors import CancelledError

                raise CancelledError(index)
            on_frame(index, walk.frames, Image.new("RGB", (self.size, self.size), (index * 20, 0, 0)))
        return Path(out)

    def decode_step(self, finished, step):
        """The "true x0" of a step: a colour that names the step (red = step), after ``decode_gate``."""
        self.decoded_steps.append(step)
        if self.decode_gate is not None:
            self.decode_gate.wait(5)
        if step > finished.request.steps:
            raise ValueError(f"no step {step}")
        return np.full((finished.request.height, finished.request.width, 3), (step, 0, 99), dtype=np.uint8)

    def unload(self) -> None:
        pass
