"""The denoising timeline under the viewer: scrub every step of the last generation, branch from one."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QWidget

from ldm_studio.app.jobs import StepUpdate  # one kept frame of the timeline is one step update
from ldm_studio.app.prompt_switches import prompt_at

VIEW_X0, VIEW_NOISY, VIEW_BOTH = "x0", "noisy", "both"


def describe(
    frame: StepUpdate, prompt_changes: dict[int, str] | None = None, second_pass: int | None = None
) -> str:
    noise = f"σ {frame.sigma:.3g}" if frame.sigma is not None else f"t {frame.timestep:.0f}"
    text = f"Step {frame.index}/{frame.total} · {noise} · {frame.elapsed:.2f} s"
    if second_pass is not None and frame.index >= second_pass:  # hires fix's second pass
        text += f" · hires {frame.index - second_pass + 1}/{frame.total - second_pass + 1}"
    if prompt_changes:
        prompt = prompt_at(prompt_changes, frame.index) or ""
        shown = prompt if len(prompt) <= 28 else prompt[:27] + "…"
        verb = "prompt switched to" if frame.index in prompt_changes and frame.index > 1 else "prompt"
        text += f" · {verb} “{shown}”"
    return text


class TimelineBar(QWidget):
    frameChosen = Signal(object)  # StepUpdate
    viewChanged = Signal()
    branchRequested = Signal(int)  # the real step to continue from
    exportRequested = Signal()
    stepWanted = Signal(int)  # a finished run's step was stopped on: decode its true x0 (timeline_decode)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.frames: list[StepUpdate] = []
        self.prompt_changes: dict[int, str] = {}  # 1-based step -> the prompt from there (editing)
        self.second_pass: int | None = None  # 1-based step where hires fix's second pass starts
        self.finished = False
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(1, 1)
        self.slider.setPageStep(5)
        self.slider.setToolTip("Scrub through the denoising steps (← → step, PgUp/PgDn jump)")
        self.slider.valueChanged.connect(self._moved)
        self.label = QLabel("No steps yet")
        self.label.setObjectName("hint")
        self.label.setMinimumWidth(210)
        self.view = QComboBox()
        self.view.addItem("Predicted image (x0)", VIEW_X0)
        self.view.addItem("Noisy latent", VIEW_NOISY)
        self.view.addItem("Noisy vs predicted", VIEW_BOTH)
        self.view.setToolTip("What the viewer shows for the chosen step")
        self.view.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.view.setMinimumContentsLength(19)
        self.view.currentIndexChanged.connect(lambda _index: self.viewChanged.emit())
        self.view.currentIndexChanged.connect(lambda _index: self._moved(self.slider.value()))
        self.branch = QPushButton("Branch from here")
        self.branch.setToolTip(
            "Continue the remaining steps from this step with the prompt, CFG, sampler "
            "and steps now in the panel"
        )
        self.branch.clicked.connect(lambda: self.branchRequested.emit(self.slider.value()))
        self.export = QPushButton("Export…")
        self.export.setToolTip("Save the denoising as an animated WebP, GIF or MP4")
        self.export.clicked.connect(self.exportRequested)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        layout.addWidget(self.view)
        layout.addWidget(self.branch)
        layout.addWidget(self.export)
        self._sync_enabled()

    def set_prompt_changes(self, changes: dict[int, str]) -> None:
        """Steps where prompt editing or alternation switches the text: named while scrubbing."""
        self.prompt_changes = dict(changes)
        switches = [f"step {step}: “{text}”" for step, text in sorted(changes.items()) if step > 1]
        self.slider.setToolTip(
            "Scrub through the denoising steps (← → step, PgUp/PgDn jump)"
            + ("\nThe prompt switches at " + "; ".join(switches) if switches else "")
        )

    def set_second_pass(self, step: int | None) -> None:
        """Where hires fix's second pass starts (None: no second pass): marked on the slider and named
        in the step text; its steps branch like the first pass's."""
        self.second_pass = step
        self.slider.setTickPosition(
            QSlider.TickPosition.TicksBelow if step is not None else QSlider.TickPosition.NoTicks
        )
        self.slider.setTickInterval(max(1, (step or 1) - 1))  # the first tick past 1 falls on the start

    def view_mode(self) -> str:
        return self.view.currentData()

    def clear(self) -> None:
        self.frames = []
        self.finished = False
        self.slider.blockSignals(True)
        self.slider.setRange(1, 1)
        self.slider.blockSignals(False)
        self.label.setText("Starting…")
        self._sync_enabled()

    def stopped(self, why: str) -> None:
        """The generation ended without an image: say so where "Starting…" was (steps stay browsable)."""
        if not self.frames:
            self.label.setText(why)

    def keep_prefix(self, steps: int) -> None:
        """A branch keeps the parent's first ``steps`` frames and adds its own after them."""
        self.frames = self.frames[:steps]
        self.finished = False
        self._sync_enabled()

    def add(self, frame: StepUpdate) -> None:
        following = self.slider.value() == len(self.frames) or not self.frames
        self.frames = [f for f in self.frames if f.index < frame.index] + [frame]
        self.slider.blockSignals(True)
        self.slider.setRange(1, max(1, len(self.frames)))
        if following:
            self.slider.setValue(len(self.frames))
        self.slider.blockSignals(False)
        self.label.setText(describe(frame, self.prompt_changes, self.second_pass))

    def finish(self) -> None:
        self.finished = True
        self._sync_enabled()

    def current(self) -> StepUpdate | None:
        index = self.slider.value() - 1
        return self.frames[index] if 0 <= index < len(self.frames) else None

    def _moved(self, value: int) -> None:
        frame = self.current()
        if frame is not None:
            self.label.setText(describe(frame, self.prompt_changes, self.second_pass))
            self.frameChosen.emit(frame)  # the kept (fast) preview first…
            if self.finished and self.view_mode() != VIEW_NOISY:
                self.stepWanted.emit(frame.index)  # …then the real VAE's picture, when it is ready

    def show_decoded(self, step: int) -> bool:
        """The true x0 of ``step`` arrived; True (and the label says so) when it is the step shown."""
        frame = self.current()
        if frame is None or frame.index != step or self.view_mode() == VIEW_NOISY:
            return False
        self.label.setText(describe(frame, self.prompt_changes, self.second_pass) + " · VAE")
        return True

    def _sync_enabled(self) -> None:
        ready = self.finished and bool(self.frames)
        self.slider.setEnabled(bool(self.frames))
        self.branch.setEnabled(ready)
        self.export.setEnabled(ready)
