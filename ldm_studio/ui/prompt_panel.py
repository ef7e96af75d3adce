"""Prompt and generation settings. Shows state and emits requests; knows nothing of torch."""

from __future__ import annotations

from PySide6.QtCore import QRegularExpression, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.app.draft import Draft
from ldm_studio.app.model_fit import ModelFit
from ldm_studio.engine.request import MAX_SEED, GenerationRequest
from ldm_studio.engine.samplers import DEFAULT_SAMPLER, sampler_names
from ldm_studio.ui.flow_layout import FlowLayout
from ldm_studio.ui.hires_panel import HiresPanel
from ldm_studio.ui.image_options import ImageOptions
from ldm_studio.ui.model_fit_view import show_clip_skip, show_guidance, show_samplers, size_tip
from ldm_studio.ui.preview_modes import extend_preview_modes
from ldm_studio.ui.prompt_edit import PromptEdit
from ldm_studio.ui.prompt_extras import PromptExtras
from ldm_studio.ui.schedule_box import FewStepOffer, ScheduleBox
from ldm_studio.ui.size_choice import SizeChoice
from ldm_studio.ui.source_panel import SourcePanel, SourceSettings

MAX_EXAMPLES = 6
CLIP_SKIP_TIP = (
    "Clip skip, numbered as in A1111: 1 reads the text encoder's last layer; 2 stops one layer earlier "
    "(the penultimate layer, then the final layer norm), and so on. Many SD 1.5 anime models were "
    "trained with 2; most other models want 1. A model can have its own default (Model settings)."
)


class PromptPanel(QWidget):
    """Shows the session's edited request and reports every edit as a ``Draft`` (it never submits one)."""

    generateRequested = Signal()
    cancelRequested = Signal()
    edited = Signal(object)  # Draft, after any field changed
    previewChanged = Signal(str, int)  # mode, every
    reuseSeedRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)

        self.prompt = PromptEdit()
        self.prompt.setPlaceholderText("Describe the image…  (Ctrl+Enter to generate)")
        self.prompt.setFixedHeight(84)
        self.prompt.submitted.connect(self.generateRequested)
        self.negative = PromptEdit()
        self.negative.setPlaceholderText("What to avoid (optional)")
        self.negative.setFixedHeight(52)
        self.negative.submitted.connect(self.generateRequested)
        self.extras = PromptExtras(self.prompt, self.negative)  # LoRA picker, token counters, warnings
        self.source_panel = SourcePanel()
        self.hires_panel = HiresPanel()  # A1111's hires fix, folded away until wanted

        self.examples_box = QWidget()
        self.examples_row = FlowLayout(self.examples_box)  # wraps, so many examples never widen the panel
        self.examples_label = QLabel("Try:")
        self.examples_label.setObjectName("hint")
        self.examples_row.addWidget(self.examples_label)
        self.examples_box.hide()
        self._example_buttons: list[QToolButton] = []

        self.seed = QLineEdit()
        self.seed.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{0,10}")))
        self.seed.setPlaceholderText("seed")
        self.random_seed = QCheckBox("Random")
        self.random_seed.setToolTip("Draw a new seed for every generation; the drawn seed is shown")
        self.random_seed.toggled.connect(self._sync_seed_enabled)
        self.reuse_seed = QToolButton()
        self.reuse_seed.setText("Reuse last")
        self.reuse_seed.setToolTip("Fix the seed of the last image, to vary other settings")
        self.reuse_seed.clicked.connect(self.reuseSeedRequested)
        self.reuse_seed.setEnabled(False)

        self.steps = QSpinBox()
        self.steps.setRange(1, 200)
        self.steps.setValue(20)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(1.0, 30.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setDecimals(1)
        self.guidance.setValue(7.0)
        self.guidance_label = QLabel("CFG")  # FLUX dev: "Guidance (distilled)" (ui.model_fit_view)
        self.sampler = QComboBox()
        self.sampler.addItems(sampler_names())
        self.sampler.setCurrentText(DEFAULT_SAMPLER)
        self.schedule_box = ScheduleBox(self.sampler)  # A1111's schedule type (and TCD's gamma)
        self.few_step_offer = FewStepOffer()  # a few-step model's note, a LoRA's preset offer
        self.batch = QSpinBox()
        self.batch.setRange(1, 16)
        self.clip_skip = QSpinBox()
        self.clip_skip.setRange(1, 12)
        self.clip_skip.setToolTip(CLIP_SKIP_TIP)

        self.sizes = SizeChoice()  # the preset and the width and height boxes
        self.size_preset, self.width_box, self.height_box = (
            self.sizes.preset,
            self.sizes.width_box,
            self.sizes.height_box,
        )

        self.image_options = ImageOptions()  # Tiling (seamless) and Tiled VAE

        self.preview_mode = QComboBox()
        self.preview_mode.addItem("Fast preview", "fast")
        self.preview_mode.addItem("Full decode", "full")
        self.preview_mode.addItem("No preview", "off")
        self.preview_mode.setToolTip(
            "Fast: a colour projection of the latent, every step. Full: a real VAE decode every N steps."
        )
        self.preview_reason = extend_preview_modes(self.preview_mode)  # Auto, Tiny decoder; the why line
        self.preview_every = QSpinBox()
        self.preview_every.setRange(1, 50)
        self.preview_every.setPrefix("every ")
        self.preview_every.setSuffix(" steps")
        self.preview_mode.currentIndexChanged.connect(self._sync_preview_every)

        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("primary")
        self.generate_button.setToolTip("Generate (Ctrl+Enter)")
        self.generate_button.clicked.connect(self.generateRequested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel (Esc)")
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.cancel_button.setEnabled(False)

        self._lay_out()
        self.set_model_fit(ModelFit())
        self.random_seed.setChecked(True)
        self._sync_seed_enabled()
        self._sync_preview_every()
        self._report_edits()

    def _report_edits(self) -> None:
        for signal in (
            self.prompt.textChanged,
            self.negative.textChanged,
            self.seed.textChanged,
            self.random_seed.toggled,
            self.steps.valueChanged,
            self.guidance.valueChanged,
            self.sampler.currentIndexChanged,
            self.batch.valueChanged,
            self.clip_skip.valueChanged,
            self.size_preset.currentIndexChanged,
            self.width_box.valueChanged,
            self.height_box.valueChanged,
            self.source_panel.changed,
            self.hires_panel.changed,
            self.image_options.changed,
            self.schedule_box.changed,
        ):
            signal.connect(self._push)
        for signal in (self.preview_mode.currentIndexChanged, self.preview_every.valueChanged):
            signal.connect(lambda *_: self.previewChanged.emit(*self.preview_settings()))

    def _push(self, *_args: object) -> None:
        self.edited.emit(self.draft())

    def _lay_out(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(_heading("Prompt"))
        layout.addWidget(self.prompt)
        layout.addWidget(self.extras)
        layout.addWidget(self.examples_box)
        layout.addWidget(self.negative)
        negative_row = QHBoxLayout()
        negative_row.addStretch(1)
        negative_row.addWidget(self.extras.negative_counter)
        layout.addLayout(negative_row)
        layout.addWidget(self.source_panel)

        layout.addWidget(_heading("Settings"))
        layout.addWidget(self.few_step_offer)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(10)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.random_seed)
        seed_row.addWidget(self.reuse_seed)
        form.addRow("Seed", seed_row)
        sampler_row = QHBoxLayout()
        sampler_row.addWidget(self.sampler, 3)
        sampler_row.addWidget(self.schedule_box, 2)
        form.addRow("Sampler", sampler_row)
        numbers = QGridLayout()
        numbers.setHorizontalSpacing(8)
        numbers.setColumnStretch(1, 1)
        numbers.setColumnStretch(3, 1)
        numbers.setColumnStretch(5, 1)
        numbers.addWidget(QLabel("Steps"), 0, 0)
        numbers.addWidget(self.steps, 0, 1)
        numbers.addWidget(self.guidance_label, 0, 2)
        numbers.addWidget(self.guidance, 0, 3)
        numbers.addWidget(QLabel("Batch"), 0, 4)
        numbers.addWidget(self.batch, 0, 5)
        form.addRow(numbers)
        clip_row = QHBoxLayout()
        clip_row.addWidget(self.clip_skip)
        clip_hint = QLabel("1 = last layer (A1111 numbering)")
        clip_hint.setObjectName("hint")
        clip_hint.setToolTip(CLIP_SKIP_TIP)
        clip_row.addWidget(clip_hint, 1)
        form.addRow("Clip skip", clip_row)
        form.addRow("Size", self.size_preset)
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_box)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_box)
        form.addRow("", size_row)
        form.addRow("", self.image_options)
        preview_row = QHBoxLayout()
        preview_row.addWidget(self.preview_mode, 1)
        preview_row.addWidget(self.preview_every)
        form.addRow("Preview", preview_row)
        form.addRow("", self.preview_reason)
        layout.addLayout(form)
        layout.addWidget(self.hires_panel)

        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 3)
        buttons.addWidget(self.cancel_button, 1)
        layout.addSpacing(4)
        layout.addLayout(buttons)

    # ---- state in ---------------------------------------------------------------------------
    def set_native_size(self, size: int) -> None:
        if self.sizes.set_native_size(size):
            self._push()

    def set_model_fit(self, fit: ModelFit) -> None:
        """The loaded model's samplers, schedule types, guidance and size step, greyed with reasons.
        Nothing is pushed: the session switches what the model cannot take and says so."""
        show_samplers(self.sampler, fit)
        show_samplers(self.hires_panel.sampler, fit)  # "Same sampler" stays offered
        self.schedule_box.blockSignals(True)
        self.schedule_box.set_only_automatic(fit.schedule_reason)
        self.schedule_box.blockSignals(False)
        show_guidance(self.guidance_label, self.guidance, fit)
        show_clip_skip(self.clip_skip, fit, CLIP_SKIP_TIP)  # SD 3 / FLUX: off, with the reason
        self.sizes.set_step(fit.size_step, size_tip(fit))

    def set_examples(self, examples: list[str] | tuple[str, ...]) -> None:
        for button in self._example_buttons:
            button.deleteLater()
        self._example_buttons = []
        for text in list(examples)[:MAX_EXAMPLES]:
            button = QToolButton()
            button.setText(text)
            button.setObjectName("chip")
            button.setToolTip(f"Use the prompt “{text}”")
            button.clicked.connect(lambda _=False, phrase=text: self.prompt.set_text(phrase))
            self.examples_row.addWidget(button)
            self._example_buttons.append(button)
        self.examples_box.setVisible(bool(self._example_buttons))

    def set_completions(self, phrases: list[str] | tuple[str, ...]) -> None:
        self.prompt.set_completions(phrases)

    def set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        self.generate_button.setText("Queue another" if running else "Generate")

    def set_generate_enabled(self, enabled: bool) -> None:
        self.generate_button.setEnabled(enabled)

    def remember_seed(self, seed: int) -> None:
        """Show the seed actually used (drawn at random or typed)."""
        self.reuse_seed.setEnabled(True)
        if self.random_seed.isChecked():
            self.seed.setText(str(seed))

    # ---- the draft out ----------------------------------------------------------------------
    def draft(self) -> Draft:
        """The fields as they stand, valid or not: the session checks them when asked to generate."""
        text = self.seed.text().strip()
        typed = int(text) if text.isdigit() else None
        request = GenerationRequest(
            prompt=self.prompt.text(),
            negative_prompt=self.negative.text(),
            seed=typed if typed is not None and typed <= MAX_SEED else None,
            steps=self.steps.value(),
            guidance=round(self.guidance.value(), 2),
            width=self.sizes.size()[0],
            height=self.sizes.size()[1],
            sampler=self.sampler.currentText(),
            batch_size=self.batch.value(),
            clip_skip=self.clip_skip.value(),
        )
        request = self.schedule_box.apply_to(self.source_panel.apply_to(request))
        request = self.hires_panel.apply_to(request)
        request = self.image_options.apply_to(request)
        return Draft(request, typed, self.random_seed.isChecked(), self.native_size_chosen())

    def show_draft(self, draft: Draft, mode: str = "all") -> None:
        """Show a draft the session was handed (restored, reused): all fields, the prompt or the seed."""
        self.set_request(draft.request, mode)
        if mode == "all":
            self.random_seed.setChecked(draft.random_seed)
        self._push()

    def set_request(self, request: GenerationRequest, mode: str = "all") -> None:
        """Fill the panel from a request: all fields, the prompt only, the seed or the clip skip only."""
        if mode in ("all", "prompt"):
            self.prompt.set_text(request.prompt)
            self.negative.set_text(request.negative_prompt)
        if mode in ("all", "clip_skip", "model"):
            self.clip_skip.setValue(request.clip_skip)
        if mode == "model":  # a model's defaults or a few-step preset: the sampling fields
            self._show_sampling(request)
            return
        if mode in ("all", "seed") and request.seed is not None:
            self.random_seed.setChecked(False)
            self.seed.setText(str(request.seed))
        if mode != "all":
            return
        self._show_sampling(request)
        self.batch.setValue(request.batch_size)
        self.source_panel.set_source(SourceSettings.from_request(request))
        self.hires_panel.set_request(request)
        self.image_options.set_from(request)
        self._push()  # the size boxes were set with their signals blocked

    def _show_sampling(self, request: GenerationRequest) -> None:
        self.steps.setValue(request.steps)
        self.guidance.setValue(request.guidance)
        if request.sampler in sampler_names():
            self.sampler.setCurrentText(request.sampler)
        self.schedule_box.set_from(request)
        if request.width and request.height:
            self.sizes.set_size(request.width, request.height)
        self._push()

    def native_size_chosen(self) -> bool:
        return self.sizes.native_chosen()

    def preview_settings(self) -> tuple[str, int]:
        return self.preview_mode.currentData(), self.preview_every.value()

    def set_preview_settings(self, mode: str, every: int) -> None:
        index = self.preview_mode.findData(mode)
        self.preview_mode.setCurrentIndex(max(0, index))
        self.preview_every.setValue(every)

    # ---- internals --------------------------------------------------------------------------
    def _sync_seed_enabled(self) -> None:
        self.seed.setReadOnly(self.random_seed.isChecked())

    def _sync_preview_every(self) -> None:
        self.preview_every.setVisible(self.preview_mode.currentData() == "full")


def _heading(text: str) -> QLabel:
    label = QLabel(text.upper())
    label.setObjectName("heading")
    return label
