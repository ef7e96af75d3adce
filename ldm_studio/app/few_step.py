"""Few-step presets in the session: adopted when a distilled model loads, offered when a LoRA of that
kind enters the prompt, and the user's own settings remembered per model when they keep them.

Qt-observable but widget-free (tested with the scripted backend). The session creates one, calls
``preset_on_load`` / ``loaded`` from its model-loaded handler and ``check`` from ``edit``; the panel
shows ``offered`` texts and answers with ``accept`` / ``keep_mine``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from ldm_studio.app import draft as drafts
from ldm_studio.app.draft import Draft
from ldm_studio.app.model_fit import fitted_draft
from ldm_studio.engine.distilled import FewStepPreset, recognise_path
from ldm_studio.engine.prompts.extra_networks import LORA_KINDS, extract_extra_networks
from ldm_studio.engine.request import GenerationRequest

if TYPE_CHECKING:
    from ldm_studio.app.network_entries import NetworkEntry
    from ldm_studio.app.session import Session

log = logging.getLogger(__name__)

# The request fields a preset sets (and a user keeping theirs gets back for that model).
SAMPLING_FIELDS = ("sampler", "schedule", "steps", "guidance", "width", "height")


def sampling_of(request: GenerationRequest) -> dict:
    """The sampling settings of ``request``, as remembered per model (JSON values)."""
    values = {name: getattr(request, name) for name in SAMPLING_FIELDS}
    if "tcd_gamma" in request.extras:
        values["tcd_gamma"] = request.extras["tcd_gamma"]
    return values


def with_sampling(request: GenerationRequest, values: dict) -> GenerationRequest:
    """``request`` with remembered sampling settings; a stale or hand-edited entry changes nothing."""
    changes = {name: values[name] for name in SAMPLING_FIELDS if name in values}
    extras = {key: value for key, value in request.extras.items() if key != "tcd_gamma"}
    if "tcd_gamma" in values:
        extras["tcd_gamma"] = values["tcd_gamma"]
    try:
        return request.replace(**changes, extras=extras)
    except (TypeError, ValueError) as error:
        log.warning("ignoring remembered sampling settings %s: %s", values, error)
        return request


class FewStepPresets(QObject):
    offered = Signal(str, str)  # the question or note, the Use button's text ("" hides the offer)

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.session = session
        self._pending: FewStepPreset | None = None  # what [Use] applies
        self._pending_name = ""  # the LoRA it came from
        self._before: Draft | None = None  # the draft a model preset replaced ([Keep mine] restores it)
        self._model_path = ""
        self._lora_seen: dict[Path, FewStepPreset | None] = {}
        self._dismissed: set[str] = set()  # LoRA names whose offer the user declined

    # ---- models --------------------------------------------------------------------------------
    def preset_on_load(self, path: str, model_settings: dict) -> FewStepPreset | None:
        """The preset a just-loaded model brings; None for an ordinary model or where the user keeps
        their own settings for it (those are put back by ``own_settings``)."""
        if str(path) in self.session.settings.own_sampling:
            return None
        try:
            return recognise_path(Path(path), model_settings)
        except OSError as error:  # a file gone or unreadable: it simply is not recognised
            log.warning("could not read %s for few-step settings: %s", path, error)
            return None

    def detected(self, path: str) -> str:
        """What the file at ``path`` says it is, for the model settings dialog ("" for nothing)."""
        try:
            preset = recognise_path(Path(path))
        except OSError:
            return ""
        return f"{preset.label} — {preset.summary()}" if preset else ""

    def own_settings(self, path: str, draft: Draft) -> Draft:
        """``draft`` with the sampling settings the user kept for this model, if they did."""
        values = self.session.settings.own_sampling.get(str(path))
        if not isinstance(values, dict):
            return draft
        return replace(draft, request=with_sampling(draft.request, values), native_size=False)

    def adopt(
        self, path: str, previous: str, draft: Draft, model_settings: dict, *, flow: bool = False
    ) -> tuple[Draft, str] | None:
        """What the session shows after the model at ``path`` loaded (``previous``: the model before):
        the user's defaults for it (clip skip, see ``draft.with_model_defaults``) and, when the model
        changed, its few-step preset or the settings the user kept for it. None: nothing changes.
        ``flow``: an SD 3 / FLUX model, whose defaults are ``app.flow_defaults``' (an SD-Turbo preset
        of Euler a, 1 step, 512² would spoil SD 3.5 Large Turbo)."""
        preset = None
        start = draft
        if str(path) != str(previous):
            preset = None if flow else self.preset_on_load(path, model_settings)
            start = self.own_settings(path, draft)
            self.loaded(path, preset, draft)
        adopted = drafts.with_model_defaults(start, model_settings, preset)
        if adopted == draft:
            return None
        sampling_changed = adopted.request.replace(clip_skip=draft.request.clip_skip) != draft.request
        return (
            adopted,
            "model" if sampling_changed or adopted.native_size != draft.native_size else "clip_skip",
        )

    def loaded(self, path: str, preset: FewStepPreset | None, before: Draft) -> None:
        """After the session adopted ``preset`` for the model at ``path``: say so, offer to undo."""
        self._model_path, self._pending = str(path), None
        if preset is None:
            self._before = None
            self.offered.emit("", "")
            return
        self._before = before
        self.offered.emit(f"{preset.label} model: using {preset.summary()}.", "")

    def adopted(self, path: str, note: str, before: Draft) -> None:
        """A flow model's default steps / guidance were adopted (``app.flow_defaults``): say so in the
        offer line, whose [Keep mine] puts ``before``'s settings back and remembers that for the model."""
        self._model_path, self._pending, self._before = str(path), None, before
        self.offered.emit(note, "")

    # ---- LoRAs ---------------------------------------------------------------------------------
    def check(self, draft: Draft, entries: list[NetworkEntry]) -> None:
        """Offer the preset of a few-step LoRA the prompt names, unless the draft already has it."""
        preset, name = self._lora_preset(draft.request.prompt, entries)
        if preset is None or name in self._dismissed or preset.matches(draft.request):
            if self._pending is not None:
                self._pending = None
                self.offered.emit("", "")
            return
        if self._pending != preset:
            self._pending, self._pending_name = preset, name
            self.offered.emit(preset.offer("LoRA"), "Use")

    def _lora_preset(self, prompt: str, entries: list[NetworkEntry]) -> tuple[FewStepPreset | None, str]:
        _text, tags = extract_extra_networks(prompt)
        by_name = {}
        for entry in entries:
            if entry.kind == "lora":
                by_name.setdefault(entry.name.lower(), entry)
                if entry.alias:
                    by_name.setdefault(entry.alias.lower(), entry)
        for tag in tags:
            if tag.kind not in LORA_KINDS:
                continue
            entry = by_name.get(tag.name.lower())
            preset = self._recognised(entry.path) if entry is not None else recognise_path(Path(tag.name))
            if preset is not None:
                return preset, tag.name
        return None, ""

    def _recognised(self, path: Path) -> FewStepPreset | None:
        if path not in self._lora_seen:  # a header read per file, not per keystroke
            try:
                self._lora_seen[path] = recognise_path(path)
            except OSError:
                self._lora_seen[path] = None
        return self._lora_seen[path]

    # ---- answers -------------------------------------------------------------------------------
    def accept(self) -> None:
        """[Use]: the offered LoRA preset goes into the draft."""
        preset, self._pending = self._pending, None
        self.offered.emit("", "")
        if preset is None:
            return
        request = preset.applied(self.session.draft.request)
        self.session.replace_draft(replace(self.session.draft, request=request, native_size=False), "model")

    def keep_mine(self) -> None:
        """[Keep mine]: decline the LoRA offer, or undo a model preset and remember that for the model."""
        self.offered.emit("", "")
        if self._pending is not None:
            self._dismissed.add(self._pending_name)
            self._pending = None
            return
        if self._before is not None and self._model_path:
            before, self._before = self._before, None
            self.session.settings.own_sampling[self._model_path] = sampling_of(before.request)
            request = with_sampling(self.session.draft.request, sampling_of(before.request))
            kept = replace(self.session.draft, request=request, native_size=before.native_size)
            if self.session.model is not None:  # an SD sampler kept on FLUX still runs as Euler
                kept, _note = fitted_draft(kept, self.session.model.fit)
            self.session.replace_draft(kept, "model")
            self.session.status.emit("Your own settings are kept for this model.", 5000)

    def close(self) -> None:
        """The offer's close button: a LoRA offer is declined, a model's note just goes away."""
        if self._pending is not None:
            self.keep_mine()
            return
        self._before = None
        self.offered.emit("", "")

    def forget_own(self, path: str) -> None:
        """Adopt the model's preset again next time it loads."""
        self.session.settings.own_sampling.pop(str(path), None)
