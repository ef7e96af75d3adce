"""The studio window: model and prompt on the left, the live preview and results on the right."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from PySide6.QtCore import QByteArray, QMimeData, Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
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
from ldm_studio.app.catalog import CatalogEntry, discover
from ldm_studio.app.settings import Settings
from ldm_studio.app.worker import EngineWorker, FinishedUpdate, StepUpdate
from ldm_studio.engine.preview import PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import ImageMetadata, read_metadata
from ldm_studio.paths import UserDirs
from ldm_studio.ui.model_panel import ModelPanel
from ldm_studio.ui.preview_view import PreviewView
from ldm_studio.ui.prompt_panel import PromptPanel
from ldm_studio.ui.results_strip import ResultsStrip

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

        QShortcut(QKeySequence("Ctrl+Return"), self, self.generate)
        QShortcut(QKeySequence("Ctrl+Enter"), self, self.generate)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.cancel)

    def _connect(self) -> None:
        self.prompt_panel.generateRequested.connect(self.generate)
        self.prompt_panel.cancelRequested.connect(self.cancel)
        self.model_panel.loadRequested.connect(self.load_model)
        self.model_panel.placementChanged.connect(self._reload_with_new_placement)
        self.results.imageChosen.connect(self._show_result)
        worker = self.worker
        worker.modelLoading.connect(self._on_model_loading)
        worker.modelLoaded.connect(self._on_model_loaded)
        worker.modelFailed.connect(self._on_model_failed)
        worker.jobStarted.connect(self._on_started)
        worker.jobStep.connect(self._on_step)
        worker.jobFinished.connect(self._on_finished)
        worker.jobCancelled.connect(self._on_cancelled)
        worker.jobFailed.connect(self._on_failed)
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
        return [self.dirs.models, *(Path(folder) for folder in self.settings.model_folders)]

    async def refresh_models(self) -> list[CatalogEntry]:
        """Scan the model folders off the GUI thread, then fill the list."""
        entries = await asyncio.to_thread(discover, self.model_folders())
        self.model_panel.set_entries(entries, self.model.path if self.model else self.settings.last_model)
        return entries

    def load_model(self, path: str) -> None:
        device, dtype = self.model_panel.placement_choice()
        self.worker.load_model(path, device, dtype)

    def _reload_with_new_placement(self) -> None:
        if self.model is not None:
            self.load_model(self.model.path)

    def _on_model_loading(self, path: str) -> None:
        self.model_panel.show_loading(path)
        self.prompt_panel.set_generate_enabled(False)
        self.preview.set_message(f"Loading {Path(path).name}…")
        self.statusBar().showMessage(f"Loading {path}")

    def _on_model_loaded(self, summary: ModelSummary) -> None:
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
        self.model_panel.show_failed(message)
        self.prompt_panel.set_generate_enabled(self.model is not None)
        if self.model is None:
            self.placement_label.setText("No model")
            self.preview.set_message("No model loaded.\nOpen a model folder or checkpoint on the left.")
        self.show_banner(message)

    # ---- generation -------------------------------------------------------------------------
    def generate(self) -> None:
        if self.model is None:
            self.show_banner("Load a model first: pick one on the left or open a folder or checkpoint.")
            return
        try:
            request = self.prompt_panel.request().replace(model=self.model.path)
        except ValueError as error:
            self.show_banner(str(error))
            return
        mode, every = self.prompt_panel.preview_settings()
        self.hide_banner()
        self.running += 1
        self.prompt_panel.set_running(True)
        self.prompt_panel.remember_seed(request.seed)
        self.worker.generate(request, PreviewSettings(mode, every))

    def cancel(self) -> None:
        if self.running:
            self.progress.setFormat("Cancelling…")
            self.worker.cancel()

    def _on_started(self, request: GenerationRequest) -> None:
        self.last_request = request
        self._started_at = time.perf_counter()
        self.progress.setRange(0, request.steps)
        self.progress.setValue(0)
        self.progress.setFormat(f"Step 0/{request.steps} · starting…")

    def _on_step(self, update: StepUpdate) -> None:
        self.progress.setRange(0, update.total)
        self.progress.setValue(update.index)
        self.progress.setFormat(progress_text(update))
        if update.image is not None:
            self.preview.set_image(update.image)

    def _on_finished(self, update: FinishedUpdate) -> None:
        self.last_result = update
        result = update.result
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat(f"Done in {result.elapsed:.1f} s · seed {result.request.seed}")
        tooltips = [f"seed {result.request.seed_for(i)}" for i in range(len(update.images))]
        self.results.set_images(update.images, tooltips)
        if update.images:
            self.preview.set_image(update.images[0])
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

    def _on_cancelled(self, _cancelled: object) -> None:
        self.progress.setFormat("Cancelled — nothing was saved")
        self.running = 0  # cancel also drops queued generations
        self.prompt_panel.set_running(False)

    def _on_failed(self, message: str) -> None:
        self.progress.setFormat("Failed")
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
