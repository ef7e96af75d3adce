"""The studio session: observable state and the actions on it, with no widget in sight.

It holds the current model (and the one loading), the request being edited, the running job and its
progress, the last result and the branch point, and the settings. Widgets bind to its signals and send
it intents; the worker's signals come in here and nowhere else (tested with a scripted backend).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ldm_studio.app import draft as drafts
from ldm_studio.app.backend import ModelSummary
from ldm_studio.app.draft import Draft
from ldm_studio.app.few_step import FewStepPresets
from ldm_studio.app.flow_defaults import FlowHandover, followed, with_defaults
from ldm_studio.app.gallery_actions import GalleryActions
from ldm_studio.app.jobs import BranchPoint, FinishedUpdate
from ldm_studio.app.model_fit import fitted_draft, fitted_request
from ldm_studio.app.model_library import ModelLibraryModel
from ldm_studio.app.preview_auto import PreviewAuto
from ldm_studio.app.prompt_tools import PromptTools
from ldm_studio.app.reuse import read_reusable
from ldm_studio.app.session_tasks import SessionTasks
from ldm_studio.app.settings import Settings
from ldm_studio.app.timeline_decode import timeline_decoder_for
from ldm_studio.app.worker import EngineWorker
from ldm_studio.engine.events import Cancelled
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import ImageMetadata
from ldm_studio.paths import UserDirs

log = logging.getLogger(__name__)


class Session(QObject, SessionTasks):
    # the model
    modelChanged = Signal(object)  # ModelSummary | None
    loadingChanged = Signal(str)  # the path on its way in; "" once it arrived or failed
    modelInspected = Signal(object)  # ModelPreview, before the weights load
    modelFailed = Signal(str)
    # the request being edited
    draftChanged = Signal(object, str)  # Draft, "all" | "prompt" | "seed" | "clip_skip": set from outside
    seedUsed = Signal(object)  # int: the seed the last generation got (drawn or typed; past a C int)
    # the job
    runningChanged = Signal(bool)
    jobStarted = Signal(object, int)  # the resolved request, the steps kept from the parent (0: none)
    progress = Signal(object)  # StepUpdate
    resultChanged = Signal(object)  # FinishedUpdate
    jobCancelled = Signal()
    jobFailed = Signal(str)
    taskStarted = Signal(str, str)  # kind, what the progress bar says
    taskProgress = Signal(str, int, int, object)  # kind, done, total, QImage | None
    taskFinished = Signal(str, object)  # kind, the path written
    taskFailed = Signal(str, str)  # kind, message ("" when cancelled)
    # messages for the user
    error = Signal(str)  # a sentence to act on (the window's banner)
    errorCleared = Signal()
    status = Signal(str, int)  # a passing line, and for how many ms

    def __init__(
        self,
        worker: EngineWorker,
        settings: Settings,
        dirs: UserDirs,
        gallery: GalleryActions | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.worker, self.settings, self.dirs, self.gallery = worker, settings, dirs, gallery
        self.library = ModelLibraryModel(dirs.models, self)
        self.library.failed.connect(self.error)
        self.library.folderAdded.connect(
            lambda folder: self.status.emit(f"Added {folder}; scanning it…", 6000)
        )
        self.model: ModelSummary | None = None
        self.prompt_tools = PromptTools(self)  # the LoRA / embedding library, the token counter
        self.networks, self.tokens = self.prompt_tools.networks, self.prompt_tools.tokens
        self.few_step = FewStepPresets(self)  # distilled models' and LoRAs' presets
        self.flow_handover = FlowHandover()  # SD settings a FLUX / SD 3 model replaced, given back after
        self._after_load: list = []  # (request, preview) of a Generate pressed while the model loads
        self.loading_path: str | None = None  # Generate meanwhile queues behind the load
        self.failed_path: str | None = None  # the model whose load failed last (its settings may fix it)
        self.draft = drafts.restored(settings.last_request, settings.random_seed)
        self.preview = drafts.preview_settings(settings.preview_mode, settings.preview_every)
        self.placement: tuple[str, str] = (settings.device, settings.dtype)
        self.running = 0  # generations queued or running
        self.task_running = ""  # TASK_* while one runs
        self.last_seed: int | None = None
        self.last_result: FinishedUpdate | None = None
        self._branch_source: FinishedUpdate | None = None  # made by the loaded model, with a trajectory
        self._pending_branch: int | None = None  # the step the next started job continues from
        self._connect_worker()
        self.timeline_decoder = timeline_decoder_for(self)  # the true x0 of the step scrubbed to
        self.preview_auto = PreviewAuto(self)  # "Auto" preview by measured cost; the tiny decoder
        if gallery is not None:
            gallery.reuseRequested.connect(self.reuse)
            gallery.status.connect(lambda text: self.status.emit(text, 6000))

    def _connect_worker(self) -> None:
        worker = self.worker
        worker.modelLoading.connect(self._on_loading)
        worker.modelInspected.connect(self.modelInspected)
        worker.modelLoaded.connect(self._on_loaded)
        worker.modelFailed.connect(self._on_load_failed)
        worker.modelUnloaded.connect(self._on_unloaded)
        worker.jobStarted.connect(self._on_started)
        worker.jobStep.connect(self.progress)
        worker.jobFinished.connect(self._on_finished)
        worker.jobCancelled.connect(self._on_cancelled)
        worker.jobFailed.connect(self._on_failed)
        worker.taskProgress.connect(self.taskProgress)
        worker.taskFinished.connect(self._on_task_finished)
        worker.taskFailed.connect(self._on_task_failed)

    # ---- state ---------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return bool(self.running or self.task_running)

    @property
    def can_generate(self) -> bool:
        return self.model is not None or self.loading_path is not None

    @property
    def branch_source(self) -> FinishedUpdate | None:
        """The result a branch continues: the last one, while the model that made it is loaded."""
        return self._branch_source

    # ---- the model -----------------------------------------------------------------------------
    def load_model(self, path: str | Path) -> None:
        device, dtype = self.placement
        self.worker.load_model(str(path), device, dtype)

    def set_placement(self, device: str, dtype: str) -> None:
        """Where the model runs; a loaded model is loaded again there."""
        if (device, dtype) == self.placement:
            return
        self.placement = (device, dtype)
        if self.model is not None:
            self.load_model(self.model.path)

    def model_settings(self, path: str | None = None) -> dict:
        """The loaded model's (or ``path``'s) own settings (prediction type, VAE, memory savers, parts);
        {} without a model."""
        from ldm_studio.engine.checkpoints.settings import get_model_settings

        path = path or (self.model.path if self.model else None)
        return get_model_settings(Path(path)) if path else {}

    def save_model_settings(self, values: dict, path: str | None = None) -> bool:
        """Remember ``values`` for the loaded model (or ``path``, one that failed to load) and load it
        again with them."""
        from ldm_studio.engine.checkpoints.settings import set_model_settings

        path = path or (self.model.path if self.model else None)
        if path is None:
            return False
        try:
            set_model_settings(Path(path), **values)
        except (OSError, ValueError) as error:
            self.error.emit(f"Could not save the model settings: {error}")
            return False
        self.load_model(path)
        return True

    def _on_loading(self, path: str) -> None:
        self.loading_path = path
        self.loadingChanged.emit(path)
        self.status.emit(f"Loading {path}", 0)

    def _on_loaded(self, summary: ModelSummary) -> None:
        if self.model is None or self.model.path != summary.path:
            self._branch_source = None  # another model's latents cannot be continued
        self.loading_path = None
        self.failed_path = None
        previous = self.model.path if self.model else self.settings.last_model
        before = self.draft  # what a flow model's defaults replace (app.flow_defaults)
        self.model = summary
        self.settings.last_model = summary.path
        self.loadingChanged.emit("")
        self.modelChanged.emit(summary)
        adopted = self.few_step.adopt(
            summary.path, previous, self.draft, self.model_settings(), flow=summary.fit.flow
        )
        if adopted is not None:  # its clip skip default; a few-step model's preset (app.few_step)
            self.replace_draft(*adopted)
        self.errorCleared.emit()
        self.status.emit(f"Loaded {summary.name}", 5000)
        fitted, note = fitted_draft(self.draft, summary.fit)  # a flow model's samplers (app.model_fit)
        defaults_note = ""
        if summary.path not in self.settings.own_sampling:  # not where the user kept their own
            fitted, defaults_note = with_defaults(fitted, summary.fit, Path(summary.path).name)
        fitted, given_back = self.flow_handover.loaded(before, fitted, summary.fit)
        note = " ".join(text for text in (note, defaults_note, given_back) if text)
        if note:
            self.replace_draft(fitted, "model")
            self.status.emit(f"Loaded {summary.name}. {note}", 10000)
        if defaults_note:  # [Keep mine] puts the user's values back and remembers that for this model
            self.few_step.adopted(summary.path, defaults_note, before)
        queued, self._after_load = self._after_load, []
        for request, preview in queued:  # fitted to the model that runs them, as the draft was
            request, fitted = fitted_request(followed(request, before, self.draft), summary.fit)
            if fitted:
                self.status.emit(fitted, 10000)
            self.worker.generate(request, preview, None)

    def _on_load_failed(self, message: str) -> None:
        self.failed_path, self.loading_path = self.loading_path, None
        self._drop_after_load()
        self.loadingChanged.emit("")
        self.status.emit("Could not load the model", 10000)  # replaces the lasting "Loading …"
        self.modelFailed.emit(message)
        self.error.emit(message)

    def _on_unloaded(self) -> None:
        # The worker's modelFailed follows and says that no model is loaded.
        self.model = None
        self._branch_source = None
        self.modelChanged.emit(None)

    # ---- the request being edited --------------------------------------------------------------
    def edit(self, draft: Draft) -> None:
        """The editor's fields changed (no signal back: the editor already shows it)."""
        self.draft = draft
        self.few_step.check(draft, self.networks.entries)  # a few-step LoRA in the prompt: offer its preset

    def replace_draft(self, draft: Draft, mode: str = "all") -> None:
        self.draft = draft
        self.draftChanged.emit(draft, mode)

    def reuse(self, metadata: ImageMetadata, mode: str = "all") -> None:
        """Fill the edited request from an image: all fields, the prompt only or the seed only."""
        draft = drafts.reused(self.draft, metadata, mode)
        draft, fitted = fitted_draft(draft, self.model.fit if self.model else None)  # an SD image's sampler
        self.replace_draft(draft, mode)
        note = drafts.reuse_note(metadata, mode)
        self.status.emit(f"{note}. {fitted}" if fitted else note, 10000 if fitted else 6000)
        self.prompt_tools.look_up(metadata, draft.request, mode)  # its LoRAs and embeddings, by name or hash

    def reuse_file(self, path: Path) -> bool:
        """Reuse everything a PNG (ours, A1111, ComfyUI, InvokeAI) says about how it was made."""
        metadata, problem = read_reusable(path)
        if metadata is None:
            self.error.emit(problem)
            return False
        self.reuse(metadata, "all")
        return True

    def reuse_last_seed(self) -> None:
        if self.last_seed is not None:
            self.replace_draft(drafts.with_seed(self.draft, self.last_seed), "seed")

    def set_preview(self, mode: str, every: int) -> None:
        self.preview = drafts.preview_settings(mode, every)
        self.preview_auto.announce()

    def job_request(self, rng: random.Random | None = None) -> GenerationRequest:
        """The edited request made ready to run; raises ValueError with a sentence for the user."""
        model = self.loading_path or (self.model.path if self.model else "")
        return drafts.job_request(self.draft, model, size_unknown=self.loading_path is not None, rng=rng)

    # ---- generation ----------------------------------------------------------------------------
    def generate(self) -> GenerationRequest | None:
        """Queue the edited request (behind a model that is still loading); None with a message if not."""
        if not self.can_generate:
            self.error.emit("Load a model first: pick one on the left or open a folder or checkpoint.")
            return None
        return self._submit(None)

    def branch_from(self, step: int) -> GenerationRequest | None:
        """Continue the last result from ``step`` with the edited prompt, guidance, sampler and steps."""
        source = self._branch_source
        if source is None or self.model is None:
            self.error.emit("There is no finished generation to branch from.")
            return None
        saved = source.saved_paths
        branch = BranchPoint(source.result, step, str(saved[0]) if saved else "")
        return self._submit(branch)

    def _submit(self, branch: BranchPoint | None) -> GenerationRequest | None:
        try:
            request = self.job_request()
        except ValueError as error:
            self.error.emit(str(error))
            return None
        request = self.preview_auto.with_decoder(request)  # Draft decode: the tiny decoder
        waits = self.loading_path is not None and branch is None  # sent, fitted, once the model is in
        if not waits:
            fit = self.model.fit if self.model and self.model.path == request.model else None
            request, fitted = fitted_request(request, fit)  # a greyed sampler runs as the model's default
            if fitted:
                self.status.emit(fitted, 10000)
        if branch is not None:
            request = drafts.branched(request, branch.parent.request)
            self._pending_branch = branch.step
        self.errorCleared.emit()
        self.running += 1
        self.runningChanged.emit(True)
        preview = self.preview_auto.for_job(self.preview, branch is not None)
        if waits:
            self._after_load.append((request, preview))
        else:
            self.worker.generate(request, preview, branch)
        if branch is None:
            self.last_seed = request.seed
            self.seedUsed.emit(request.seed)
        return request

    def cancel(self) -> None:
        self._drop_after_load()
        if self.busy:
            self.worker.cancel()

    def _drop_after_load(self) -> None:
        if self._after_load:
            self.running = max(0, self.running - len(self._after_load))
            self._after_load = []
            self.runningChanged.emit(self.busy)

    def _on_started(self, request: GenerationRequest) -> None:
        kept, self._pending_branch = self._pending_branch or 0, None
        self.jobStarted.emit(request, kept)

    def _on_finished(self, update: FinishedUpdate) -> None:
        self.last_result = update
        if update.result.trajectory is not None:
            self._branch_source = update
        if update.saved and self.gallery is not None:
            self.gallery.add_saved(update.saved)
        self._job_ended()
        self.resultChanged.emit(update)
        if update.save_error:
            self.error.emit(update.save_error)
        elif update.saved:
            folder = update.saved[0].path.parent
            self.status.emit(f"Saved {len(update.saved)} image(s) to {folder}", 8000)

    def _on_cancelled(self, _cancelled: Cancelled) -> None:
        self.running = 0  # cancel also drops the queued generations
        self._pending_branch = None
        self.runningChanged.emit(self.busy)
        self.jobCancelled.emit()

    def _on_failed(self, message: str) -> None:
        self._pending_branch = None
        self._job_ended()
        self.jobFailed.emit(message)
        self.error.emit(message)

    def _job_ended(self) -> None:
        self.running = max(0, self.running - 1)
        self.runningChanged.emit(self.busy)

    # ---- saving, settings, closing -------------------------------------------------------------
    def save_image_as(self, index: int, path: str | Path) -> Path | None:
        """Save image ``index`` of the last result anywhere: the way out of a full gallery disk."""
        from ldm_studio.app.saving import save_image_as

        if self.last_result is None or not self.last_result.images:
            self.error.emit("There is no finished image to save yet.")
            return None
        try:
            target = save_image_as(self.last_result.result, index, path)
        except OSError as error:
            self.error.emit(f"{error} Try another folder.")
            return None
        self.status.emit(f"Saved {target}", 8000)
        return target

    def save_settings(self, window_geometry: str = "", splitter_state: str = "") -> None:
        """Write the settings file: the edited request, preview and placement choices, the window."""
        settings = self.settings
        if window_geometry:
            settings.window_geometry = window_geometry
        if splitter_state:
            settings.splitter_state = splitter_state
        if self.draft.request.prompt.strip():  # an empty prompt is not worth remembering over the last
            settings.last_request = self.draft.request.to_dict()
        settings.random_seed = self.draft.random_seed
        settings.preview_mode, settings.preview_every = str(self.preview.mode), self.preview.every
        settings.device, settings.dtype = self.placement
        try:
            settings.save(self.dirs.config)
        except OSError as error:
            log.error("could not save settings: %s", error)

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop the gallery's background work and the worker; True when the worker ended in time."""
        if self.gallery is not None:
            self.gallery.shutdown()
        self.prompt_tools.shutdown()
        return self.worker.shutdown(timeout=timeout)
