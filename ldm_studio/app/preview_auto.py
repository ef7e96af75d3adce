"""The live preview the session actually asks for: the user's mode, or for "Auto" the one the model's
measured cost affords (engine.preview_choice), with the tiny decoder of the model's family filled in.

The cost is measured once per model, device and precision from the first finished generation's own
events (the seconds after the last step are the final decode; the span of the steps is their cost),
so nothing extra runs; it is remembered in the settings (``preview_costs``). Tiny decoders come from
the library: the user's choice per family (``tiny_decoders`` in the settings), else the first one
installed that fits the family (found on the worker thread at load, ``ModelSummary.tiny_decoders``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from ldm_studio.engine.preview_choice import PreviewCost, choose_preview, cost_from_run
from ldm_studio.engine.preview_settings import PreviewMode, PreviewSettings


def cost_key(model: Any) -> str:
    """One measurement per model file, device and precision."""
    return f"{model.path}|{model.device}|{model.dtype}"


def family_tiny_decoder(model: Any, chosen: dict[str, str]) -> str:
    """The tiny decoder for ``model``'s family: the user's choice if its file is still there, else the
    first installed one that fits; "" when there is none."""
    path = chosen.get(model.family, "")
    if path and Path(path).exists():
        return path
    installed = getattr(model, "tiny_decoders", ())
    return installed[0] if installed else ""


def resolved(preview: PreviewSettings, model: Any, settings: Any) -> tuple[PreviewSettings, str]:
    """The settings a job runs with and the sentence the panel shows about them."""
    if model is None:
        return preview, ""
    tiny = family_tiny_decoder(model, settings.tiny_decoders)
    if preview.mode is PreviewMode.AUTO:
        stored = settings.preview_costs.get(cost_key(model))
        cost = PreviewCost(**stored) if isinstance(stored, dict) else None
        choice = choose_preview(cost, tiny, model.family)
        every = 1 if choice.mode is PreviewMode.FULL else preview.every
        return PreviewSettings(
            choice.mode, every, tiny if choice.mode is PreviewMode.TINY else ""
        ), choice.reason
    if preview.mode is PreviewMode.TINY:
        if not tiny:
            return PreviewSettings(PreviewMode.FAST), f"Fast preview: no tiny decoder for {model.family}"
        return dataclasses.replace(preview, tiny_decoder=tiny), f"Tiny decoder preview: {Path(tiny).name}"
    return preview, ""


class PreviewAuto(QObject):
    """Follows the session: resolves each job's preview, measures the first run of each model."""

    reasonChanged = Signal(str)  # "Full preview: decode is 9% of a step" ("" for a plain choice)

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self._session = session
        self._steps: list[float] = []
        self._used: PreviewSettings | None = None  # what the running job previews with
        self._measuring = False
        session.progress.connect(lambda update: self._steps.append(update.elapsed))
        session.jobStarted.connect(self._started)
        session.resultChanged.connect(self._finished)
        session.modelChanged.connect(lambda _model: self.announce())

    def for_job(self, preview: PreviewSettings, branch: bool = False) -> PreviewSettings:
        """What the job about to be queued previews with (called by the session's submit)."""
        settings, reason = resolved(preview, self._session.model, self._session.settings)
        self._used = settings
        model = self._session.model
        self._measuring = (
            not branch and model is not None and cost_key(model) not in self._session.settings.preview_costs
        )
        self.reasonChanged.emit(reason)
        return settings

    def set_family_decoder(self, family: str, path: str) -> None:
        """The user's tiny decoder for every model of ``family`` ("" = the first installed one)."""
        if path:
            self._session.settings.tiny_decoders[family] = path
        else:
            self._session.settings.tiny_decoders.pop(family, None)
        self.announce()

    def set_draft(self, on: bool) -> None:
        """Draft decode: the saved image through the family's tiny decoder (remembered)."""
        self._session.settings.draft_decode = bool(on)

    def with_decoder(self, request: Any) -> Any:
        """``request`` with its final decoder: the tiny one when Draft decode is on and one is there.

        A reused image that was a draft keeps its decoder only while Draft decode is on, so the full
        VAE stays the default for saved images."""
        model = self._session.model
        tiny = family_tiny_decoder(model, self._session.settings.tiny_decoders) if model is not None else ""
        wanted = tiny if self._session.settings.draft_decode else ""
        if wanted == request.decoder:
            return request
        if self._session.settings.draft_decode and not tiny and model is not None:
            self._session.status.emit(
                f"Draft decode: no tiny decoder for {model.family}; using the VAE", 6000
            )
        return request.replace(decoder=wanted)

    def announce(self) -> None:
        """Say which preview the next job gets (on a model change, or the mode changed)."""
        self.reasonChanged.emit(
            resolved(self._session.preview, self._session.model, self._session.settings)[1]
        )

    def _started(self, _request: Any, kept: int) -> None:
        self._steps = []
        if kept:
            self._measuring = False  # a branch's clock starts late: no measurement

    def _finished(self, update: Any) -> None:
        model, used = self._session.model, self._used
        if not self._measuring or model is None or used is None:
            return
        self._measuring = False
        total = len(self._steps)
        full = sum(used.wants(i, total) for i in range(2, total + 1)) if used.mode is PreviewMode.FULL else 0
        cost = cost_from_run(self._steps, update.result.elapsed, full)
        if cost is None:
            return
        self._session.settings.preview_costs[cost_key(model)] = dataclasses.asdict(cost)
        self.announce()
