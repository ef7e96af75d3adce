"""The studio window: model and prompt on the left, the live preview and results on the right."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from PySide6.QtCore import QByteArray, QMimeData, Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ldm_studio import APP_NAME
from ldm_studio.app.backend import ModelSummary
from ldm_studio.app.catalog import discover
from ldm_studio.app.settings import Settings
from ldm_studio.app.worker import EngineWorker, FinishedUpdate, StepUpdate
from ldm_studio.engine.preview_settings import PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import ImageMetadata, read_metadata
from ldm_studio.paths import UserDirs
from ldm_studio.ui.animation_dialogs import TimelineExportDialog, WalkDialog
from ldm_studio.ui.model_panel import ModelPanel
from ldm_studio.ui.model_settings_dialog import ModelSettingsDialog
from ldm_studio.ui.preview_view import PreviewView
from ldm_studio.ui.prompt_panel import PromptPanel
from ldm_studio.ui.results_strip import ResultsStrip
from ldm_studio.ui.timeline_bar import VIEW_BOTH, VIEW_NOISY, TimelineBar

log = logging.getLogger(__name__)


def progress_text(update: StepUpdate) -> str:
    """'Step 7/20 · 3.1 it/s · 4 s left' from what the worker reports."""
    rate = update.index / update.elapsed if update.elapsed > 0 else 0.0
    left = (update.total - update.index) / rate if rate > 0 else 0.0
    speed = f"{rate:.1f} it/s" if rate >= 1 else (f"{1 / rate:.1f} s/it" if rate > 0 else "")
    return f"Step {update.index}/{update.total} · {speed} · {left:.0f} s left"


class MainWindow(QMainWindow):
    def __init__(
        self, worker: EngineWorker, settings: Settings, dirs: UserDirs, gallery: QWidget | None = None
    ) -> None:
        super().__init__()
        self.worker = worker
        self.gallery = gallery
        self.settings = settings
        self.dirs = dirs
        self.model: ModelSummary | None = None
        self.loading_path: str | None = None  # a model on its way in: Generate queues behind its load
        self.running = 0  # generations queued or running
        self.last_request: GenerationRequest | None = None
        self.last_result: FinishedUpdate | None = None
        self.setWindowTitle(APP_NAME)

        self.model_panel = ModelPanel()
        self.prompt_panel = PromptPanel()
        self.preview = PreviewView()
        self.preview.set_message("No model loaded.\nOpen a model folder or checkpoint on the left.")
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("Ready")
        self.progress.setValue(0)
        self.results = ResultsStrip()
        self.timeline = TimelineBar()
        self.task_running = ""  # "export" / "walk" while one runs
        self.pending_branch: int | None = None
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner_close = QToolButton()
        self.banner_close.setText("✕")
        self.banner_close.setToolTip("Dismiss")
        self.banner_close.clicked.connect(self.hide_banner)
        self.placement_label = QLabel("No model")
        self.placement_label.setObjectName("placement")

        self._build_layout()
        self._connect()
        self._restore_settings()
        self.hide_banner()
        self.prompt_panel.set_generate_enabled(False)

    # ---- construction -----------------------------------------------------------------------
    def _build_layout(self) -> None:
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(14, 14, 14, 14)
        side_layout.setSpacing(14)
        side_layout.addWidget(self.model_panel)
        side_layout.addWidget(self.prompt_panel)
        side_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        # never narrower than the panels' own minimum: clipped controls are worse than a wider panel
        scroll.setMinimumWidth(
            side.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4
        )
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        create = QWidget()
        create_layout = QVBoxLayout(create)
        create_layout.setContentsMargins(10, 10, 10, 10)
        create_layout.setSpacing(8)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.banner_close)
        self.banner_box = QWidget()
        self.banner_box.setObjectName("bannerBox")
        self.banner_box.setLayout(banner_row)
        create_layout.addWidget(self.banner_box)
        create_layout.addWidget(self.preview, 1)
        create_layout.addWidget(self.timeline)
        create_layout.addWidget(self.progress)
        create_layout.addWidget(self.results)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(create, "Create")
        if self.gallery is not None:
            self.tabs.addTab(self.gallery, "Gallery")
        self.setAcceptDrops(True)

        self.splitter = QSplitter()
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([400, 900])
        self.setCentralWidget(self.splitter)
        self.statusBar().addPermanentWidget(self.placement_label)

        self._build_menus()
        QShortcut(QKeySequence("Ctrl+Return"), self, self.generate)
        QShortcut(QKeySequence("Ctrl+Enter"), self, self.generate)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.cancel)

    def _connect(self) -> None:
        self.prompt_panel.generateRequested.connect(self.generate)
        self.prompt_panel.cancelRequested.connect(self.cancel)
        self.model_panel.loadRequested.connect(self.load_model)
        self.model_panel.placementChanged.connect(self._reload_with_new_placement)
        self.model_panel.settingsRequested.connect(self.edit_model_settings)
        self.model_panel.addFolderRequested.connect(self.add_model_folder)
        self.results.imageChosen.connect(self._show_result)
        self.timeline.frameChosen.connect(self._show_frame)
        self.timeline.viewChanged.connect(lambda: self._show_frame(self.timeline.current()))
        self.timeline.branchRequested.connect(self.branch_from)
        self.timeline.exportRequested.connect(self.export_timeline)
        worker = self.worker
        worker.modelLoading.connect(self._on_model_loading)
        worker.modelInspected.connect(self.model_panel.show_inspected)
        worker.modelLoaded.connect(self._on_model_loaded)
        worker.modelFailed.connect(self._on_model_failed)
        worker.modelUnloaded.connect(self._on_model_unloaded)
        worker.jobStarted.connect(self._on_started)
        worker.jobStep.connect(self._on_step)
        worker.jobFinished.connect(self._on_finished)
        worker.jobCancelled.connect(self._on_cancelled)
        worker.jobFailed.connect(self._on_failed)
        worker.taskProgress.connect(self._on_task_progress)
        worker.taskFinished.connect(self._on_task_finished)
        worker.taskFailed.connect(self._on_task_failed)
        if self.gallery is not None:
            self.gallery.reuse_requested.connect(self.reuse)
            self.gallery.status_message.connect(lambda text: self.statusBar().showMessage(text, 6000))

    def _restore_settings(self) -> None:
        settings = self.settings
        if settings.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(settings.window_geometry.encode()))
        else:
            self.resize(1320, 860)
        if settings.splitter_state:
            self.splitter.restoreState(QByteArray.fromBase64(settings.splitter_state.encode()))
        if settings.last_request:
            try:
                self.prompt_panel.set_request(GenerationRequest.from_dict(settings.last_request))
            except (TypeError, ValueError) as error:
                log.warning("ignoring the saved request: %s", error)
        self.prompt_panel.random_seed.setChecked(settings.random_seed)
        self.prompt_panel.set_preview_settings(settings.preview_mode, settings.preview_every)
        self.model_panel.set_placement_choice(settings.device, settings.dtype)

    def save_settings(self) -> None:
        settings = self.settings
        settings.window_geometry = bytes(self.saveGeometry().toBase64()).decode()
        settings.splitter_state = bytes(self.splitter.saveState().toBase64()).decode()
        try:
            settings.last_request = self.prompt_panel.request().to_dict()
        except ValueError:
            pass  # an empty prompt is not worth remembering over the last good one
        settings.random_seed = self.prompt_panel.random_seed.isChecked()
        settings.preview_mode, settings.preview_every = self.prompt_panel.preview_settings()
        settings.device, settings.dtype = self.model_panel.placement_choice()
        try:
            settings.save(self.dirs.config)
        except OSError as error:
            log.error("could not save settings: %s", error)

    # ---- models -----------------------------------------------------------------------------
    def model_folders(self) -> list[Path]:
        from ldm_studio.engine.library import user_model_folders

        return [self.dirs.models, *user_model_folders()]

    async def refresh_models(self) -> list:
        """Scan the model folders off the GUI thread (names first, then families and hashes)."""
        entries = await asyncio.to_thread(discover, self.model_folders())
        current = self.model.path if self.model else self.settings.last_model
        self.model_panel.set_entries(entries, current)
        from ldm_studio.engine.library import ModelLibrary

        library = await asyncio.to_thread(ModelLibrary.default)
        detailed = await asyncio.to_thread(library.scan)
        self.model_panel.set_entries(detailed, self.model.path if self.model else current)
        return detailed

    def add_model_folder(self, folder: str) -> None:
        from ldm_studio.engine.errors import ModelLoadError
        from ldm_studio.engine.library import add_model_folder

        try:
            add_model_folder(Path(folder))
        except (ModelLoadError, OSError) as error:
            self.show_banner(str(error))
            return
        self.statusBar().showMessage(f"Added {folder}; scanning it…", 6000)
        asyncio.ensure_future(self.refresh_models())

    def edit_model_settings(self) -> None:
        if self.model is None:
            return
        dialog = ModelSettingsDialog(Path(self.model.path), self)
        dialog.convertRequested.connect(self.convert_checkpoint)
        if dialog.exec() == ModelSettingsDialog.DialogCode.Accepted:
            try:
                dialog.save()
            except (OSError, ValueError) as error:
                self.show_banner(f"Could not save the model settings: {error}")
                return
            self.load_model(self.model.path)

    def convert_checkpoint(self, path: str) -> None:
        self._start_task("convert", f"Converting {Path(path).name} to .safetensors…")
        self.worker.convert_checkpoint(Path(path))

    def load_model(self, path: str) -> None:
        device, dtype = self.model_panel.placement_choice()
        self.worker.load_model(path, device, dtype)

    def _reload_with_new_placement(self) -> None:
        if self.model is not None:
            self.load_model(self.model.path)

    def _on_model_loading(self, path: str) -> None:
        self.loading_path = path
        self.model_panel.show_loading(path)
        self.prompt_panel.set_generate_enabled(True)  # a click now waits in the worker's queue
        self.preview.set_message(
            f"Loading {Path(path).name}…\nGenerate now and it starts as soon as the model is ready."
        )
        self.statusBar().showMessage(f"Loading {path}")

    def _on_model_loaded(self, summary: ModelSummary) -> None:
        self.loading_path = None
        self.model = summary
        self.settings.last_model = summary.path
        self.model_panel.show_loaded(summary)
        self.prompt_panel.set_native_size(summary.native_size)
        self.prompt_panel.set_completions(summary.captions)
        self.prompt_panel.set_examples(summary.examples)
        self.prompt_panel.set_generate_enabled(True)
        self.placement_label.setText(f"{summary.name} · {summary.device} · {summary.dtype}")
        if self.preview.image() is None:
            self.preview.set_message("Type a prompt and press Ctrl+Enter.")
        self.statusBar().showMessage(f"Loaded {summary.name}", 5000)
        self.hide_banner()

    def _on_model_failed(self, message: str) -> None:
        self.loading_path = None
        self.model_panel.show_failed(message)
        self.prompt_panel.set_generate_enabled(self.model is not None)
        if self.model is None:
            self.placement_label.setText("No model")
            self.preview.set_message("No model loaded.\nOpen a model folder or checkpoint on the left.")
        self.show_banner(message)

    def _on_model_unloaded(self) -> None:
        self.model = None  # the worker's modelFailed follows and shows that no model is loaded

    # ---- generation -------------------------------------------------------------------------
    def generate(self) -> None:
        if self.model is None and self.loading_path is None:
            self.show_banner("Load a model first: pick one on the left or open a folder or checkpoint.")
            return
        request = self._submit()
        if request is not None:
            self.prompt_panel.remember_seed(request.seed)

    def branch_from(self, step: int) -> None:
        """Continue the last generation from ``step`` with the panel's prompt, CFG, sampler and steps."""
        if self.last_result is not None and self.model is not None and self._submit(branch_from=step):
            self.pending_branch = step

    def _submit(self, branch_from: int | None = None) -> GenerationRequest | None:
        """Queue the panel's request on the worker; None (and a message) when the panel is not ready."""
        try:
            request = self.prompt_panel.request().replace(model=self.loading_path or self.model.path)
        except ValueError as error:
            self.show_banner(str(error))
            return None
        if self.loading_path and self.prompt_panel.native_size_chosen():
            request = request.replace(width=None, height=None)  # the coming model's size is not known yet
        mode, every = self.prompt_panel.preview_settings()
        self.hide_banner()
        self.running += 1
        self.prompt_panel.set_running(True)
        self.worker.generate(request, PreviewSettings(mode, every), branch_from=branch_from)
        return request

    def cancel(self) -> None:
        if self.running or self.task_running:
            self.progress.setFormat("Cancelling…")
            self.worker.cancel()

    def _on_started(self, request: GenerationRequest) -> None:
        if self.pending_branch is not None:
            self.timeline.keep_prefix(self.pending_branch)
            self.pending_branch = None
        else:
            self.timeline.clear()
        self.last_request = request
        self._started_at = time.perf_counter()
        self.progress.setRange(0, request.steps)
        self.progress.setValue(0)
        self.progress.setFormat(f"Step 0/{request.steps} · starting…")

    def _on_step(self, update: StepUpdate) -> None:
        self.progress.setRange(0, update.total)
        self.progress.setValue(update.index)
        self.progress.setFormat(progress_text(update))
        self.timeline.add(update)
        if self.timeline.current() is update:
            self._show_frame(update)

    def _on_finished(self, update: FinishedUpdate) -> None:
        self.last_result = update
        result = update.result
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat(f"Done in {result.elapsed:.1f} s · seed {result.request.seed}")
        tooltips = [f"seed {result.request.seed_for(i)}" for i in range(len(update.images))]
        self.results.set_images(update.images, tooltips)
        if update.images:
            self.preview.set_image(update.images[0])
        self.timeline.finish()
        if "branch_step" in result.metadata:
            self.progress.setFormat(
                f"Branched from step {result.metadata['branch_step']} · done in {result.elapsed:.1f} s"
            )
        if update.save_error:
            self.show_banner(update.save_error)
        elif update.saved:
            if self.gallery is not None:
                for path in update.saved:
                    self.gallery.add_saved(path)
            folder = update.saved[0].parent
            self.statusBar().showMessage(f"Saved {len(update.saved)} image(s) to {folder}", 8000)
        self.running = max(0, self.running - 1)
        self.prompt_panel.set_running(self.running > 0)

    def _show_frame(self, frame: StepUpdate | None) -> None:
        if frame is None:
            return
        view = self.timeline.view_mode()
        if view == VIEW_BOTH and frame.noisy is not None and frame.image is not None:
            self.preview.set_pair(frame.noisy, frame.image)
        elif view == VIEW_NOISY and frame.noisy is not None:
            self.preview.set_image(frame.noisy)
        elif frame.image is not None:
            self.preview.set_image(frame.image)

    # ---- animations: timeline export and latent walks -----------------------------------------
    def animation_folder(self, kind: str) -> Path:
        root = (
            Path(self.settings.gallery_folder) if self.settings.gallery_folder else self.dirs.default_gallery
        )
        return root / kind

    def export_timeline(self) -> None:
        if self.last_result is None:
            return
        request = self.last_result.result.request
        default = self.animation_folder("timelines") / f"{time.strftime('%Y%m%d-%H%M%S')}-{request.seed}"
        dialog = TimelineExportDialog(default, self)
        if dialog.exec() != TimelineExportDialog.DialogCode.Accepted:
            return
        choice = dialog.choice()
        self._start_task("export", "Exporting the timeline…")
        self.worker.export_timeline(choice.path, full=choice.full, fps=choice.fps, hold=choice.hold)

    def start_walk(self) -> None:
        if self.model is None:
            self.show_banner("Load a model first.")
            return
        try:
            start = self.prompt_panel.request().replace(model=self.model.path, batch_size=1)
        except ValueError as error:
            self.show_banner(str(error))
            return
        stamp = time.strftime("%Y%m%d-%H%M%S")
        dialog = WalkDialog(start.seed, start.prompt, self.animation_folder("walks") / f"{stamp}-walk", self)
        if dialog.exec() != WalkDialog.DialogCode.Accepted:
            return
        choice = dialog.choice()
        from ldm_studio.engine.walk import WalkRequest

        walk = WalkRequest(start, choice.to_seed, choice.to_prompt, choice.frames)
        frames_folder = choice.path.with_name(f"{choice.path.stem}_frames")
        self._start_task("walk", f"Walking {choice.frames} frames…")
        self.worker.walk(walk, frames_folder, choice.path, choice.fps)

    def _start_task(self, kind: str, text: str) -> None:
        self.hide_banner()
        self.task_running = kind
        self.progress.setRange(0, 0)
        self.progress.setFormat(text)
        self.prompt_panel.set_running(True)

    def _end_task(self) -> None:
        self.task_running = ""
        self.progress.setRange(0, 1)
        self.prompt_panel.set_running(self.running > 0)

    def _on_task_progress(self, kind: str, done: int, total: int, image: QImage | None) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        noun = "frame" if kind == "walk" else "step"
        self.progress.setFormat(f"{'Walk' if kind == 'walk' else 'Export'}: {noun} {done}/{total}")
        if image is not None:
            self.preview.set_image(image)

    def _on_task_finished(self, kind: str, path: object) -> None:
        self._end_task()
        self.progress.setValue(1)
        if kind == "convert":
            self.progress.setFormat("Converted")
            self.statusBar().showMessage(f"Wrote {path}; opening it", 10000)
            self.load_model(str(path))
            return
        what = "Latent walk" if kind == "walk" else "Timeline"
        self.progress.setFormat(f"{what} saved")
        self.statusBar().showMessage(f"{what} saved to {path}", 10000)

    def _on_task_failed(self, kind: str, message: str) -> None:
        self._end_task()
        self.progress.setValue(0)
        self.progress.setFormat("Cancelled" if not message else "Failed")
        if message:
            self.show_banner(message)

    # ---- menus and saving ---------------------------------------------------------------------
    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addAction("Open model &folder…", self.model_panel._browse_folder)
        file_menu.addAction("Open &checkpoint…", self.model_panel._browse_file)
        file_menu.addSeparator()
        self.save_action = file_menu.addAction("&Save image as…", self.save_image_as)
        self.save_action.setShortcut(QKeySequence.StandardKey.Save)
        file_menu.addSeparator()
        file_menu.addAction("&Quit", self.close).setShortcut(QKeySequence.StandardKey.Quit)
        create = menu.addMenu("&Create")
        create.addAction("&Generate\tCtrl+Enter", self.generate)
        create.addAction("&Cancel\tEsc", self.cancel)
        create.addSeparator()
        create.addAction("Latent &walk…", self.start_walk)
        create.addAction("&Export timeline…", self.export_timeline)
        self.help_menu = menu.addMenu("&Help")
        self.help_menu.addAction("&About LDM Studio", self.show_about)

    def show_about(self) -> None:
        from ldm_studio.ui.about_dialog import AboutDialog

        device = f"{self.model.device} · {self.model.dtype}" if self.model else None
        AboutDialog(self.dirs, device=device, parent=self).exec()

    def save_image_as(self, path: str | None = None) -> Path | None:
        """Save the image on screen (with its settings) anywhere: the way out of a full gallery disk."""
        if self.last_result is None or not self.last_result.images:
            self.show_banner("There is no finished image to save yet.")
            return None
        index = max(0, self.results.currentRow())
        if not path:
            suggested = str(Path.home() / f"{self.last_result.result.request.seed_for(index)}.png")
            path, _ = QFileDialog.getSaveFileName(self, "Save image as", suggested, "PNG images (*.png)")
            if not path:
                return None
        from ldm_studio.app.saving import save_image_as

        try:
            target = save_image_as(self.last_result.result, index, path)
        except OSError as error:
            self.show_banner(f"{error} Try another folder.")
            return None
        self.statusBar().showMessage(f"Saved {target}", 8000)
        return target

    def _on_cancelled(self, _cancelled: object) -> None:
        self.progress.setFormat("Cancelled — nothing was saved")
        self.timeline.stopped("Cancelled")
        self.running = 0  # cancel also drops queued generations
        self.prompt_panel.set_running(False)

    def _on_failed(self, message: str) -> None:
        self.progress.setFormat("Failed")
        self.timeline.stopped("Failed before its first step")
        self.running = max(0, self.running - 1)
        self.prompt_panel.set_running(self.running > 0)
        self.show_banner(message)

    def _show_result(self, index: int) -> None:
        image = self.results.image(index)
        if image is not None:
            self.preview.set_image(image)

    # ---- reuse: from the gallery or a PNG dropped on the window --------------------------------
    def reuse(self, metadata: ImageMetadata, mode: str = "all") -> None:
        """Fill the prompt panel from an image's metadata: all fields, the prompt only or the seed only."""
        request = metadata.reuse(GenerationRequest(""), mode)
        self.prompt_panel.set_request(request, mode)
        self.tabs.setCurrentIndex(0)
        what = {"all": "settings", "prompt": "prompt", "seed": "seed"}.get(mode, mode)
        made_by = {"a1111": "an A1111", "comfyui": "a ComfyUI", "invokeai": "an InvokeAI"}.get(
            metadata.source or "", "the"
        )
        self.statusBar().showMessage(f"Reused the {what} of {made_by} image", 6000)

    def reuse_file(self, path: Path) -> None:
        try:
            metadata = read_metadata(path)
        except (OSError, ValueError) as error:
            self.show_banner(f"{path.name} cannot be read as an image: {error}")
            return
        if not metadata.prompt and metadata.seed is None:
            self.show_banner(f"{path.name} carries no generation settings to reuse.")
            return
        self.reuse(metadata, "all")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if _dropped_pngs(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt API)
        paths = _dropped_pngs(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.reuse_file(paths[0])

    # ---- messages ---------------------------------------------------------------------------
    def show_banner(self, message: str) -> None:
        self.banner.setText(message)
        self.banner_box.show()
        log.info("shown to user: %s", message)

    def hide_banner(self) -> None:
        self.banner_box.hide()

    def banner_text(self) -> str:
        return self.banner.text() if self.banner_box.isVisibleTo(self) else ""

    # ---- closing ----------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        self.save_settings()
        if self.gallery is not None:
            self.gallery.shutdown()
        if not self.worker.shutdown(timeout=5.0):
            log.warning("the worker did not stop within 5 s; exiting anyway")
        event.accept()


def _dropped_pngs(mime: QMimeData) -> list[Path]:
    if not mime.hasUrls():
        return []
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    return [path for path in paths if path.suffix.lower() == ".png"]
