"""The values that travel between the session, the worker thread and the backend: jobs in, updates out.

All plain frozen dataclasses. Engine values (requests, events) are imported for their types only, so
this module stays free of torch; QImage is the one Qt type, built on the worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtGui import QImage

from ldm_studio.engine.events import Finished
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import ImageMetadata


@dataclass(frozen=True)
class BranchPoint:
    """Continue ``parent`` (a finished generation that kept its trajectory) from its step ``step``."""

    parent: Finished
    step: int
    parent_image: str = ""  # the saved file of the parent's first image, recorded in the child's metadata


@dataclass(frozen=True)
class WalkSpec:
    """A latent walk as the app asks for it; the backend turns it into the engine's WalkRequest."""

    start: GenerationRequest
    to_seed: int
    to_prompt: str = ""
    frames: int = 16


@dataclass(frozen=True)
class SavedImage:
    """One image written to the gallery, with the metadata it was written with (nothing re-reads it)."""

    path: Path
    metadata: ImageMetadata


@dataclass(frozen=True)
class StepUpdate:
    index: int
    total: int
    elapsed: float
    timestep: float
    sigma: float | None
    image: QImage | None
    noisy: QImage | None = None


@dataclass(frozen=True)
class FinishedUpdate:
    images: list[QImage]
    result: Finished
    saved: list[SavedImage] = field(default_factory=list)
    save_error: str = ""

    @property
    def saved_paths(self) -> list[Path]:
        return [image.path for image in self.saved]


TASK_EXPORT, TASK_WALK, TASK_CONVERT = "export", "walk", "convert"
TASK_UPSCALE = "upscale"  # a gallery image enlarged into a new one (app.upscale_task)
