"""The schedule-type combo beside the sampler (A1111's "Schedule type"), TCD's gamma, and the few-step
offer bar ("LCM LoRA: use LCM, 4 steps, CFG 1.5?  [Use] [Keep mine]"). Widgets only: no torch."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QWidget,
)

from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.samplers import (
    DEFAULT_SCHEDULE,
    DEFAULT_TCD_GAMMA,
    SAMPLERS,
    schedule_names,
    schedules_for,
    tcd_gamma,
)

SCHEDULE_TIPS = {
    "Automatic": "The sampler's own spacing of the steps",
    "Karras": "Karras et al.'s sigmas: more steps at low noise",
    "Exponential": "Sigmas evenly spaced in log: between Automatic and Karras",
    "SGM Uniform": "Evenly spaced timesteps ending at the last one (trailing): what SDXL-Lightning and "
    "Hyper-SD were distilled with",
    "Beta": "Sigmas from a beta distribution (Lee et al. 2024): more steps at both ends",
}


class ScheduleBox(QWidget):
    """The schedule type for ``sampler`` (names the sampler cannot take are greyed, with the reason),
    and TCD's gamma while TCD is chosen."""

    changed = Signal()

    def __init__(self, sampler: QComboBox, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sampler = sampler
        self.only_automatic = ""  # why no other schedule type applies to the loaded model (SD 3, FLUX)
        self.schedule = QComboBox()
        for name in schedule_names():
            self.schedule.addItem(name)
            self.schedule.setItemData(
                self.schedule.count() - 1, SCHEDULE_TIPS[name], Qt.ItemDataRole.ToolTipRole
            )
        self.schedule.setToolTip(
            "Schedule type: how the steps are spaced over the noise levels (as in A1111)"
        )
        self.gamma = QDoubleSpinBox()
        self.gamma.setRange(0.0, 1.0)
        self.gamma.setSingleStep(0.05)
        self.gamma.setDecimals(2)
        self.gamma.setValue(DEFAULT_TCD_GAMMA)
        self.gamma.setPrefix("γ ")
        self.gamma.setToolTip(
            "TCD's gamma: fresh noise per step, 0 = deterministic; 0.3 is the authors' default"
        )
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.schedule, 1)
        layout.addWidget(self.gamma)
        sampler.currentIndexChanged.connect(self._sync)
        self.schedule.currentIndexChanged.connect(self.changed)
        self.gamma.valueChanged.connect(self.changed)
        self._sync()

    def _sync(self) -> None:
        """Grey what the sampler cannot take; fall back to Automatic when the choice became one of them."""
        name = self.sampler.currentText()
        allowed = [DEFAULT_SCHEDULE] if self.only_automatic else schedules_for(name)
        model = self.schedule.model()
        assert isinstance(model, QStandardItemModel)
        for row in range(self.schedule.count()):
            item = model.item(row)
            ok = item.text() in allowed
            item.setEnabled(ok)
            tip = SCHEDULE_TIPS[item.text()]
            why = self.only_automatic or f"{name} cannot use this schedule type"
            item.setToolTip(tip if ok else f"{why[:1].upper()}{why[1:]}. {tip}")
        if self.schedule.currentText() not in allowed:
            self.schedule.setCurrentText(DEFAULT_SCHEDULE)
        self.gamma.setVisible(self._takes_gamma())

    def set_only_automatic(self, reason: str) -> None:
        """Grey every schedule type but Automatic with ``reason`` (a flow model); "" : as the sampler says."""
        self.only_automatic = reason
        self._sync()

    def _takes_gamma(self) -> bool:
        spec = SAMPLERS.get(self.sampler.currentText())
        return spec is not None and spec.takes_gamma

    def apply_to(self, request: GenerationRequest) -> GenerationRequest:
        extras = {key: value for key, value in request.extras.items() if key != "tcd_gamma"}
        if self._takes_gamma():
            extras["tcd_gamma"] = round(self.gamma.value(), 2)
        return request.replace(schedule=self.schedule.currentText(), extras=extras)

    def set_from(self, request: GenerationRequest) -> None:
        self._sync()
        if request.schedule in schedules_for(self.sampler.currentText()) and not self.only_automatic:
            self.schedule.setCurrentText(request.schedule)
        try:
            self.gamma.setValue(tcd_gamma(request.extras))
        except ValueError:
            self.gamma.setValue(DEFAULT_TCD_GAMMA)


class FewStepOffer(QFrame):
    """A small, dismissable line: a few-step model's note or a LoRA's offer, with its buttons."""

    useRequested = Signal()
    keepRequested = Signal()
    closeRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("offer")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.use = QPushButton("Use")
        self.keep = QPushButton("Keep mine")
        self.keep.setToolTip("Keep your own sampler, steps and CFG (remembered for this model)")
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Dismiss")
        self.use.clicked.connect(self.useRequested)
        self.keep.clicked.connect(self.keepRequested)
        close.clicked.connect(self.closeRequested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.use)
        layout.addWidget(self.keep)
        layout.addWidget(close)
        self.hide()

    def show_offer(self, text: str, use_text: str = "") -> None:
        """Show ``text`` (hidden when empty); a [Use] button only where there is something to apply."""
        self.text.setText(text)
        self.use.setText(use_text or "Use")
        self.use.setVisible(bool(use_text))
        self.setVisible(bool(text))


def bind_few_step_offer(offer: FewStepOffer, presets: object) -> None:
    """``presets``: the session's ``app.few_step.FewStepPresets`` (its texts in, the answers out)."""
    presets.offered.connect(offer.show_offer)
    offer.useRequested.connect(presets.accept)
    offer.keepRequested.connect(presets.keep_mine)
    offer.closeRequested.connect(presets.close)
