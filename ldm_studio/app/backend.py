"""What the worker thread drives: the real torch engine, or a scripted fake in tests.

The app layer never imports torch itself; ``TorchBackend`` imports the engine lazily, on the worker
thread, so the window paints before torch has loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ldm_studio.app.jobs import BranchPoint, WalkSpec
from ldm_studio.app.model_fit import ModelFit, fit_for
from ldm_studio.engine.events import Cancelled, Failed, Finished
from ldm_studio.engine.preview_settings import PreviewSettings
from ldm_studio.engine.request import GenerationRequest

if TYPE_CHECKING:
    from PIL import Image

    from ldm_studio.engine.events import Event

log = logging.getLogger(__name__)


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
    tokenizer_path: str = ""  # the folder the prompt box's token counter reads (app.token_counter)
    tiny_decoders: tuple[str, ...] = ()  # installed tiny autoencoders that fit its family (app.preview_auto)
    fit: ModelFit = ModelFit()  # its samplers, guidance and size step (SD 3 / FLUX differ; app.model_fit)


Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ModelPreview:
    """What a model file or folder is, read from its headers before any weight is loaded."""

    path: str
    family: str  # human label, e.g. "Stable Diffusion 1.x"
    file_type: str
    file_size: int
    memory_bytes: int
    prediction_type: str
    prediction_source: str = ""

    @property
    def text(self) -> str:
        prediction = "v-prediction" if self.prediction_type == "v_prediction" else self.prediction_type
        source = f" ({self.prediction_source})" if self.prediction_source else ""
        return (
            f"{self.family} · {self.file_type} · {human_size(self.file_size)} on disk · "
            f"needs about {human_size(self.memory_bytes)} of memory · {prediction}{source}"
        )


def human_size(size: int) -> str:
    """The catalogue's one size format (``engine.catalog.human_size``): the CLI and the window agree."""
    from ldm_studio.engine.catalog import human_size as catalogue_human_size

    return catalogue_human_size(size)


OnEvent = Callable[["Event"], None]
ShouldStop = Callable[[], bool]


class Backend(Protocol):
    """What the worker drives. Branch and export state is passed in (the session owns it), never kept."""

    def inspect(self, path: Path) -> ModelPreview | None: ...

    def load(self, path: Path, device: str, dtype: str) -> ModelSummary: ...

    def current(self) -> ModelSummary | None: ...

    def generate(
        self,
        request: GenerationRequest,
        on_event: OnEvent,
        should_stop: ShouldStop,
        preview: PreviewSettings,
        branch: BranchPoint | None = None,
    ) -> Finished | Cancelled | Failed: ...

    def export_timeline(
        self,
        finished: Finished,
        path: Path,
        *,
        full: bool,
        fps: float,
        hold: float,
        on_progress: Progress,
        should_stop: ShouldStop,
    ) -> Path: ...

    def walk(
        self,
        walk: WalkSpec,
        folder: Path,
        out: Path,
        *,
        fps: float,
        on_frame: Callable[[int, int, Image.Image], None],
        should_stop: ShouldStop,
    ) -> Path: ...

    def decode_step(self, finished: Finished, step: int) -> Any: ...  # H x W x 3 uint8 (app.timeline_decode)

    def unload(self) -> None: ...


def _precision_label(model: Any) -> str:
    """The weights' dtype, and whether the engine computes in bf16 on top of it (engine.precision)."""
    from ldm_studio.engine.precision import wants_bf16_autocast

    label = str(model.placement.dtype).removeprefix("torch.")
    if wants_bf16_autocast(model.placement.device, model.dtype_choice) and label == "float32":
        label += " + bf16 autocast"
    return label


def _same_path(a: str | Path, b: str | Path) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _read_lines(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        return ()
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip())


def _tokenizer_folder(model: Any) -> str:
    """A diffusers folder's own tokenizer; for a single file, the shipped config its family loads with."""
    if model.path.is_dir():
        folder = model.path / "tokenizer"
        return str(folder) if folder.is_dir() else ""
    from ldm_studio.engine.checkpoints.configs import family_folder

    try:
        return str(family_folder(model.family, model.prediction_type) / "tokenizer")
    except FileNotFoundError:
        return ""


def _fitting_tiny_decoders(family: str) -> tuple[str, ...]:
    """Tiny decoders in the library folders that decode this family's latents (read from headers)."""
    from ldm_studio.engine.tiny_autoencoder import scan_tiny_autoencoders

    try:
        found = scan_tiny_autoencoders()
    except OSError as error:  # an unreadable library folder must not stop a model from loading
        log.warning("could not scan the tiny autoencoder folders: %s", error)
        return ()
    return tuple(str(info.path) for info in found if info.has_decoder and family in info.fits)


def _model_fit(model: Any) -> ModelFit:
    """What the prompt panel offers for it: flow models' samplers, guidance and size step."""
    from ldm_studio.engine.flow_models import is_flow_family, pipe_variant

    if not is_flow_family(model.family):
        return ModelFit()
    return fit_for(model.family, pipe_variant(model.pipe), model.vae_scale_factor)


class TorchBackend:
    """The real engine. Lives on, and is only touched from, the worker thread."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self._model: Any = None  # engine.loader.LoadedModel, imported on the worker thread
        self._cache_dir = cache_dir
        self._threads_set = False
        self._summary: ModelSummary | None = None
        self._loaded_with: tuple[Path, str, str] | None = None  # to bring it back if a switch fails

    def _set_threads(self) -> None:
        # torch's thread count is per thread: leave the GUI thread a core where there is more than one.
        if self._threads_set:
            return
        from ldm_studio.engine.device import set_cpu_threads

        set_cpu_threads()
        self._threads_set = True

    def inspect(self, path: Path) -> ModelPreview | None:
        """Read what ``path`` is from its headers; raises ModelLoadError for what cannot load."""
        from ldm_studio.engine.checkpoints import FAMILY_LABELS, inspect_model
        from ldm_studio.engine.errors import ModelLoadError

        if not Path(path).exists():
            raise ModelLoadError(f"{path} does not exist")
        info = inspect_model(Path(path))
        if not info.loadable:
            raise ModelLoadError(info.reason)
        return ModelPreview(
            path=str(path),
            family=FAMILY_LABELS.get(info.family, info.family),
            file_type=info.file_type,
            file_size=info.file_size,
            memory_bytes=info.memory_bytes,
            prediction_type=info.prediction_type,
            prediction_source=info.prediction_source,
        )

    def load(self, path: Path, device: str, dtype: str) -> ModelSummary:
        """Load ``path`` in place of the current model; if that fails, the previous one comes back."""
        self._set_threads()
        from ldm_studio.engine.loader import load_model

        previous = self._loaded_with
        self.unload()  # first: two big models at once may not fit
        try:
            model = load_model(path, device=device, dtype=dtype, cache_dir=self._cache_dir)
        except Exception:
            if previous is not None:
                self._restore(*previous)
            raise
        self._adopt(model, (Path(path), device, dtype))
        return self._summary

    def current(self) -> ModelSummary | None:
        """The model loaded now, if any (after a failed switch: the one that was brought back)."""
        return self._summary

    def _restore(self, path: Path, device: str, dtype: str) -> None:
        from ldm_studio.engine.loader import load_model

        try:
            self._adopt(
                load_model(path, device=device, dtype=dtype, cache_dir=self._cache_dir), (path, device, dtype)
            )
        except Exception:  # it loaded before; if it cannot now, the user is told no model is loaded
            log.exception("could not reload %s after a failed switch", path)

    def _adopt(self, model: Any, loaded_with: tuple[Path, str, str]) -> None:
        folder = model.path if model.path.is_dir() else model.path.parent
        self._model = model
        self._loaded_with = loaded_with
        self._summary = ModelSummary(
            name=model.name,
            path=str(model.path),
            family=model.family,
            device=model.placement.device.type.upper(),
            dtype=_precision_label(model),
            native_size=model.native_size,
            prediction_type=model.prediction_type,
            model_hash=model.model_hash,
            captions=_read_lines(folder / "captions.txt") if model.path.is_dir() else (),
            examples=_read_lines(folder / "examples.txt") if model.path.is_dir() else (),
            tokenizer_path=_tokenizer_folder(model),
            tiny_decoders=_fitting_tiny_decoders(model.family),
            fit=_model_fit(model),
        )

    def generate(
        self,
        request: GenerationRequest,
        on_event: OnEvent,
        should_stop: ShouldStop,
        preview: PreviewSettings,
        branch: BranchPoint | None = None,
    ) -> Finished | Cancelled | Failed:
        from ldm_studio.engine.generate import Branch, generate

        refusal = self._refusal(request, branch)
        if refusal is not None:
            on_event(refusal)
            return refusal
        engine_branch = None
        if branch is not None:
            engine_branch = Branch(branch.parent.trajectory, branch.step, branch.parent.request)
        return generate(
            self._model, request, on_event, should_stop, preview, keep_trajectory=True, branch=engine_branch
        )

    def _refusal(self, request: GenerationRequest, branch: BranchPoint | None) -> Failed | None:
        if self._model is None:
            return Failed("No model is loaded: open a model first.")
        if request.model and not _same_path(request.model, self._model.path):
            # queued for a model whose load failed: never make it with another model
            return Failed(f"{Path(request.model).name} is not loaded, so this generation did not run.")
        if branch is not None and branch.parent.trajectory is None:
            return Failed("There is no finished generation to branch from.")
        return None

    def export_timeline(
        self,
        finished: Finished,
        path: Path,
        *,
        full: bool,
        fps: float,
        hold: float,
        on_progress: Progress,
        should_stop: ShouldStop,
    ) -> Path:
        from ldm_studio.engine.animation import export_animation, timeline_frames
        from ldm_studio.engine.errors import GenerationError

        if self._model is None or finished.trajectory is None:
            raise GenerationError("Generate an image first: its denoising is what gets exported.")
        request = finished.request
        frames = timeline_frames(
            self._model,
            finished.trajectory,
            (request.width, request.height),
            full=full,
            on_progress=on_progress,
            should_stop=should_stop,
        )
        return export_animation(frames, Path(path), fps=fps, hold_last=hold)

    def walk(
        self,
        walk: WalkSpec,
        folder: Path,
        out: Path,
        *,
        fps: float,
        on_frame: Callable[[int, int, Image.Image], None],
        should_stop: ShouldStop,
    ) -> Path:
        from ldm_studio.engine.animation import export_animation
        from ldm_studio.engine.errors import GenerationError
        from ldm_studio.engine.walk import WalkRequest
        from ldm_studio.engine.walk import walk as run_walk

        if self._model is None:
            raise GenerationError("No model is loaded: open a model first.")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)

        def keep(index: int, total: int, image: Image.Image) -> None:
            image.save(folder / f"frame_{index:04d}.png")
            on_frame(index, total, image)

        request = WalkRequest(walk.start, walk.to_seed, walk.to_prompt, walk.frames)
        frames = run_walk(self._model, request, keep, should_stop)
        return export_animation(frames, Path(out), fps=fps, hold_last=0.5)

    def decode_step(self, finished: Finished, step: int) -> Any:
        """Kept step ``step`` of ``finished`` through the real VAE (the timeline's true x0)."""
        from ldm_studio.engine.errors import GenerationError
        from ldm_studio.engine.step_decode import decode_kept_step

        made_by = finished.request.model
        if self._model is None or finished.trajectory is None or not _same_path(made_by, self._model.path):
            raise GenerationError("The model that made this timeline is not loaded.")
        return decode_kept_step(self._model, finished.trajectory, step)

    def unload(self) -> None:
        self._summary = None
        self._loaded_with = None
        if self._model is not None:
            self._model.unload()
            self._model = None
