"""The studio window: model and prompt on the left, the Create and Gallery tabs on the right.

The window holds no session state: it lays out the panels, binds them to the ``Session`` (state in,
intents out), and owns what only a window can do — menus, shortcuts, file dialogs, drops, closing.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import QByteArray, QMimeData, Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ldm_studio import APP_NAME
from ldm_studio.app.backend import ModelSummary
from ldm_studio.app.jobs import WalkSpec
from ldm_studio.app.model_parts import is_flow_model
from ldm_studio.app.session import Session
from ldm_studio.ui.animation_dialogs import TimelineExportDialog, WalkDialog
from ldm_studio.ui.create_page import CreatePage
from ldm_studio.ui.gallery_panel import GalleryPanel
from ldm_studio.ui.image_options import bind_image_options
from ldm_studio.ui.model_panel import ModelPanel
from ldm_studio.ui.model_settings_dialog import ModelSettingsDialog
from ldm_studio.ui.prompt_bindings import bind_prompt_tools
from ldm_studio.ui.prompt_panel import PromptPanel
from ldm_studio.ui.schedule_box import bind_few_step_offer
from ldm_studio.ui.task_progress import TaskProgress
from ldm_studio.ui.tiny_decoder_choice import bind_draft_decode, tiny_decoder_choice
from ldm_studio.ui.train_lora_dialog import show_train_lora_dialog
from ldm_studio.ui.upscale_dialog import ask_and_upscale

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(self, session: Session, *, gallery_scan_on_start: bool = True) -> None:
        super().__init__()
        self.session = session
        self.setWindowTitle(APP_NAME)
        self.model_panel = ModelPanel()
        self.prompt_panel = PromptPanel()
        self.create_page = CreatePage(session)
        self.gallery = (
            GalleryPanel(session.gallery, scan_on_start=gallery_scan_on_start) if session.gallery else None
        )
        self.placement_label = QLabel("No model")
        self.placement_label.setObjectName("placement")
        self.task_progress = TaskProgress(session)  # a task started from the Gallery is followed there too
        self._build_layout()
        self._build_menus()
        self._bind_model_panel()
        self._bind_prompt_panel()
        self._bind_create_page()
        self._restore()

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

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.create_page, "Create")
        if self.gallery is not None:
            self.tabs.addTab(self.gallery, "Gallery")
        self.setAcceptDrops(True)

        self.splitter = QSplitter()
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([400, 900])
        self.setCentralWidget(self.splitter)
        self.statusBar().addPermanentWidget(self.task_progress)
        self.statusBar().addPermanentWidget(self.placement_label)
        QShortcut(QKeySequence("Ctrl+Return"), self, self.generate)
        QShortcut(QKeySequence("Ctrl+Enter"), self, self.generate)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.cancel)

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
        self.create_menu = menu.addMenu("&Create")
        self.create_menu.addAction("&Generate\tCtrl+Enter", self.generate)
        self.create_menu.addAction("&Cancel\tEsc", self.cancel)
        self.create_menu.addSeparator()
        self.create_menu.addAction("Latent &walk…", self.start_walk)
        self.create_menu.addAction("&Export timeline…", self.export_timeline)
        self.create_menu.addAction("Train a &LoRA…", lambda: show_train_lora_dialog(self))
        self.help_menu = menu.addMenu("&Help")
        self.help_menu.addAction("&About LDM Studio", self.show_about)

    # ---- bindings: state in, intents out ----------------------------------------------------------
    def _bind_model_panel(self) -> None:
        panel, session = self.model_panel, self.session
        panel.loadRequested.connect(session.load_model)
        panel.placementChanged.connect(lambda: session.set_placement(*panel.placement_choice()))
        panel.settingsRequested.connect(self.edit_model_settings)
        panel.partsRequested.connect(lambda: self.edit_model_settings(self.session.failed_path))
        panel.addFolderRequested.connect(session.library.add_folder)
        session.library.entriesChanged.connect(self._show_models)
        session.modelInspected.connect(panel.show_inspected)
        session.loadingChanged.connect(lambda path: panel.show_loading(path) if path else None)
        session.modelChanged.connect(self._model_changed)
        session.modelFailed.connect(self._model_failed)
        session.status.connect(lambda text, ms: self.statusBar().showMessage(text, ms))

    def _bind_prompt_panel(self) -> None:
        panel, session = self.prompt_panel, self.session
        panel.edited.connect(session.edit)
        panel.previewChanged.connect(session.set_preview)
        session.preview_auto.reasonChanged.connect(panel.preview_reason.setText)  # which preview, and why
        bind_draft_decode(panel.preview_reason.draft, session)
        panel.generateRequested.connect(self.generate)
        panel.cancelRequested.connect(self.cancel)
        panel.reuseSeedRequested.connect(session.reuse_last_seed)
        session.draftChanged.connect(self._show_draft)
        session.seedUsed.connect(panel.remember_seed)
        session.runningChanged.connect(panel.set_running)
        session.loadingChanged.connect(lambda _path: panel.set_generate_enabled(session.can_generate))
        session.modelFailed.connect(lambda _message: panel.set_generate_enabled(session.can_generate))
        panel.set_generate_enabled(False)
        bind_prompt_tools(panel, session)  # the LoRA / embedding picker and the token counters
        bind_image_options(panel.image_options, session.settings)  # Tiled VAE is an app setting
        bind_few_step_offer(panel.few_step_offer, session.few_step)  # few-step models' presets

    def _bind_create_page(self) -> None:
        self.create_page.timeline.branchRequested.connect(self.session.branch_from)
        self.create_page.timeline.exportRequested.connect(self.export_timeline)
        self.task_progress.cancelRequested.connect(self.cancel)
        if self.gallery is not None:
            self.gallery.upscaleRequested.connect(lambda row: ask_and_upscale(self.session, row, self))

    def _restore(self) -> None:
        settings, session = self.session.settings, self.session
        if settings.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(settings.window_geometry.encode()))
        else:
            self.resize(1320, 860)
        if settings.splitter_state:
            self.splitter.restoreState(QByteArray.fromBase64(settings.splitter_state.encode()))
        self.prompt_panel.set_preview_settings(str(session.preview.mode), session.preview.every)
        self.prompt_panel.show_draft(session.draft)
        self.model_panel.set_placement_choice(*session.placement)

    def _show_draft(self, draft: object, mode: str) -> None:
        self.prompt_panel.show_draft(draft, mode)
        if mode in ("all", "prompt", "seed"):  # a reuse brings the panel into view; a model default does not
            self.tabs.setCurrentIndex(0)

    def _show_models(self, entries: list) -> None:
        session = self.session
        self.model_panel.set_entries(
            entries, session.model.path if session.model else session.settings.last_model
        )

    def _model_changed(self, summary: ModelSummary | None) -> None:
        panel = self.prompt_panel
        panel.set_generate_enabled(self.session.can_generate)
        if summary is None:
            self.placement_label.setText("No model")
            return
        self.model_panel.show_loaded(summary)
        panel.set_model_fit(summary.fit)  # SD 3 / FLUX: flow samplers, their guidance, sides of 16
        panel.set_native_size(summary.native_size)
        panel.set_completions(summary.captions)
        panel.set_examples(summary.examples)
        self.placement_label.setText(f"{summary.name} · {summary.device} · {summary.dtype}")

    def _model_failed(self, message: str) -> None:
        failed = self.session.failed_path
        self.model_panel.show_failed(message, parts=bool(failed and is_flow_model(Path(failed))))
        if self.session.model is None:
            self.placement_label.setText("No model")

    # ---- intents that need the window (dialogs, the current result) ----------------------------
    def load_model(self, path: str) -> None:
        self.session.load_model(path)

    def generate(self) -> None:
        self.session.generate()

    def cancel(self) -> None:
        if self.session.busy:
            self.create_page.cancelling()
            if self.session.task_running:
                self.task_progress.cancelling()
            self.session.cancel()

    def edit_model_settings(self, path: str | None = None) -> None:
        """The loaded model's settings, or ``path``'s (a model that failed to load, e.g. for its parts)."""
        session = self.session
        if path is None and session.model is None:
            return
        path = path or session.model.path
        detected = session.few_step.detected(path)  # a few-step model's kind, from its file
        loaded = session.model is not None and session.model.path == path
        # the family's tiny decoder (app settings, not the model's); a model that did not load has none yet
        tiny = tiny_decoder_choice(session) if loaded else None
        saved = session.model_settings(path)
        dialog = ModelSettingsDialog(Path(path), saved, self, detected, tiny)
        dialog.convertRequested.connect(session.convert_checkpoint)
        if dialog.exec() == ModelSettingsDialog.DialogCode.Accepted:
            if tiny is not None:
                session.preview_auto.set_family_decoder(tiny.family, tiny.value())
            session.save_model_settings(dialog.values(), path)

    def export_timeline(self) -> None:
        default = self.session.suggested_timeline_path()
        if default is None:
            return
        dialog = TimelineExportDialog(default, self)
        if dialog.exec() != TimelineExportDialog.DialogCode.Accepted:
            return
        choice = dialog.choice()
        self.session.export_timeline(choice.path, full=choice.full, fps=choice.fps, hold=choice.hold)

    def start_walk(self) -> None:
        start = self.session.walk_start()
        if start is None:
            return
        default = self.session.animation_folder("walks") / f"{time.strftime('%Y%m%d-%H%M%S')}-walk"
        dialog = WalkDialog(start.seed, start.prompt, default, self)
        if dialog.exec() != WalkDialog.DialogCode.Accepted:
            return
        choice = dialog.choice()
        spec = WalkSpec(start, choice.to_seed, choice.to_prompt, choice.frames)
        self.session.walk(spec, choice.path, choice.fps)

    def save_image_as(self, path: str | None = None) -> Path | None:
        """Save the image on screen (with its settings) anywhere: the way out of a full gallery disk."""
        index = self.create_page.current_result()
        last = self.session.last_result
        if not path and last is not None:
            suggested = str(Path.home() / f"{last.result.request.seed_for(index)}.png")
            path, _ = QFileDialog.getSaveFileName(self, "Save image as", suggested, "PNG images (*.png)")
            if not path:
                return None
        return self.session.save_image_as(index, path or "")

    def show_about(self) -> None:
        from ldm_studio.ui.about_dialog import AboutDialog

        model = self.session.model
        AboutDialog(
            self.session.dirs, device=f"{model.device} · {model.dtype}" if model else None, parent=self
        ).exec()

    def reuse_file(self, path: Path) -> None:
        self.session.reuse_file(Path(path))

    def banner_text(self) -> str:
        return self.create_page.banner_text()

    # ---- drops and closing ------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if _dropped_pngs(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt API)
        paths = _dropped_pngs(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.reuse_file(paths[0])

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        self.session.save_settings(
            bytes(self.saveGeometry().toBase64()).decode(),
            bytes(self.splitter.saveState().toBase64()).decode(),
        )
        if not self.session.shutdown(timeout=5.0):
            log.warning("the worker did not stop within 5 s; exiting anyway")
        event.accept()


def _dropped_pngs(mime: QMimeData) -> list[Path]:
    if not mime.hasUrls():
        return []
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    return [path for path in paths if path.suffix.lower() == ".png"]
