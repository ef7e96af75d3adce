"""SD 3 / FLUX defaults for steps and guidance, and the SD settings given back when an SD model follows.

A draft made for SD (CFG 7, 20 steps) is wrong for FLUX dev (distilled guidance 3.5) and schnell
(4 steps, no guidance). When a flow model loads and the draft's value lies outside what that model
reads sensibly, the model's default is adopted and said in a sentence. The defaults are those of
diffusers' pipelines and the models' cards: ``FluxPipeline.__call__`` (diffusers 0.42) takes
``num_inference_steps=28, guidance_scale=3.5`` (also Forge's "Distilled CFG Scale" default); FLUX.1
schnell's card uses 4 steps and guidance 0 (none); ``StableDiffusion3Pipeline.__call__`` takes 28 steps
and guidance 7.0 (SD 3 Medium); SD 3.5 Large's card 28 steps, CFG 3.5; SD 3.5 Medium's 40 steps,
CFG 4.5; SD 3.5 Large Turbo's 4 steps, CFG 0 (none).

``FlowHandover`` remembers the settings the draft had before the first flow model changed them, and
puts back those still at the flow model's value when an SD model loads next. No Qt, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ldm_studio.app.model_fit import GUIDANCE_DISTILLED, GUIDANCE_NONE, ModelFit

if TYPE_CHECKING:
    from ldm_studio.app.draft import Draft
    from ldm_studio.engine.request import GenerationRequest

HANDED_FIELDS = ("sampler", "schedule", "steps", "guidance")  # what fitting a flow model can change
WORDS = {
    "sampler": "the {} sampler",
    "schedule": "the {} schedule",
    "steps": "{} steps",
    "guidance": "CFG {:g}",
}


@dataclass(frozen=True)
class FlowDefaults:
    steps: int
    guidance: float
    steps_range: tuple[int, int]  # a draft's value inside these is the user's and stays
    guidance_range: tuple[float, float]


def defaults_for(fit: ModelFit | None, name: str = "") -> FlowDefaults | None:
    """The defaults of the loaded flow model (``name``: its file or folder name); None for SD."""
    if fit is None or not fit.flow:
        return None
    label = fit.family_label
    if fit.guidance_kind == GUIDANCE_NONE:  # FLUX.1 schnell
        return FlowDefaults(4, 1.0, (1, 8), (1.0, 1.0))
    if fit.guidance_kind == GUIDANCE_DISTILLED:  # FLUX.1 dev
        return FlowDefaults(28, 3.5, (12, 60), (1.5, 5.0))
    if label == "SD 3.5 Large" and "turbo" in name.lower():
        return FlowDefaults(4, 1.0, (1, 8), (1.0, 1.5))
    if label == "SD 3.5 Large":
        return FlowDefaults(28, 3.5, (12, 80), (2.0, 6.0))
    if label == "SD 3.5 Medium":
        return FlowDefaults(40, 4.5, (12, 80), (2.0, 6.0))
    return FlowDefaults(28, 7.0, (12, 80), (3.0, 9.0))  # SD 3 Medium


def guidance_words(fit: ModelFit, value: float) -> str:
    if fit.guidance_kind == GUIDANCE_DISTILLED:
        return f"distilled guidance {value:g}"
    return "no CFG (1)" if value <= 1.0 else f"CFG {value:g}"


def with_defaults(draft: Draft, fit: ModelFit | None, name: str = "") -> tuple[Draft, str]:
    """``draft`` with the model's steps and guidance where its own are not sensible for it, and the
    sentence saying so ("" when both stay)."""
    defaults = defaults_for(fit, name)
    if defaults is None or fit is None:
        return draft, ""
    request = draft.request
    changes: dict = {}
    low, high = defaults.guidance_range
    if not low <= request.guidance <= high:
        changes["guidance"] = defaults.guidance
    low_steps, high_steps = defaults.steps_range
    if not low_steps <= request.steps <= high_steps:
        changes["steps"] = defaults.steps
    if not changes:
        return draft, ""
    said = []
    if "guidance" in changes and fit.guidance_kind != GUIDANCE_NONE:  # schnell's CFG 1 is said already
        said.append(guidance_words(fit, defaults.guidance))
    if "steps" in changes:
        said.append(f"{defaults.steps} steps")
    note = f"{fit.family_label}: using its default {' and '.join(said)}." if said else ""
    return replace(draft, request=request.replace(**changes)), note


def followed(request: GenerationRequest, before: Draft, after: Draft) -> GenerationRequest:
    """A request made from ``before`` (a Generate pressed while the model loaded) with what the load
    then changed in the draft (``after``): the job runs as the panel now shows."""
    changes = {
        name: getattr(after.request, name)
        for name in HANDED_FIELDS
        if getattr(request, name) == getattr(before.request, name) != getattr(after.request, name)
    }
    return request.replace(**changes) if changes else request


class FlowHandover:
    """The SD settings a flow model replaced, given back when an SD model loads after it."""

    def __init__(self) -> None:
        self._before: dict | None = None  # the draft's HANDED_FIELDS before the first flow model
        self._set: dict = {}  # what the flow models set them to

    def loaded(self, before: Draft, after: Draft, fit: ModelFit | None) -> tuple[Draft, str]:
        """Called with the draft before and after a model's load fitted it (``fit``: the model's).
        For a flow model, remember what changed; for an SD model, give back what a flow model changed
        and the user left as it was. Returns the draft to show and the sentence ("" when nothing)."""
        if fit is not None and fit.flow:
            if self._before is None:
                self._before = {name: getattr(before.request, name) for name in HANDED_FIELDS}
            self._set = {
                name: getattr(after.request, name)
                for name in HANDED_FIELDS
                if getattr(after.request, name) != self._before[name]
            }
            return after, ""
        previous, self._before = self._before, None
        set_by_flow, self._set = self._set, {}
        if previous is None:
            return after, ""
        back = {
            name: previous[name]
            for name, value in set_by_flow.items()
            if getattr(after.request, name) == value  # the user did not change it since
        }
        if not back:
            return after, ""
        words = [WORDS[name].format(value) for name, value in back.items()]
        note = f"Back to your {', '.join(words)} from before the flow model."
        return replace(after, request=after.request.replace(**back)), note
