"""What the prompt panel offers for the loaded model, and a request fitted to it.

SD 3.x and FLUX.1 are flow-matching models: only flow samplers run them, their schedule is their own,
FLUX reads guidance differently (dev: a value the network takes in, one pass; schnell: none at all)
and their sides are multiples of the latent patch. ``ModelFit`` is those facts, worked out on the
worker thread when a model loads (``fit_for``) and carried in its ``ModelSummary``; the panel only
shows them. ``fitted_request`` / ``fitted_draft`` switch what a model cannot take (a sampler from a
reused SD image) to what it can, with the sentence that says so, instead of letting the job fail.

No Qt and no torch here: pure values and functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ldm_studio.engine import flow_models
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.samplers import DEFAULT_SAMPLER, DEFAULT_SCHEDULE, sampler_names

if TYPE_CHECKING:
    from ldm_studio.app.draft import Draft

GUIDANCE_CFG = "cfg"  # classifier-free guidance: two passes per step (SD 1.x-XL, SD 3)
GUIDANCE_DISTILLED = "distilled"  # FLUX dev: the guidance value is an input of the network
GUIDANCE_NONE = "none"  # FLUX schnell: no guidance at all (CFG 1)
SD_SIZE_STEP = 8  # SD VAEs downsample 8x; the panel has always stepped by 8
FLOW_SCHEDULE_REASON = (
    "SD 3 and FLUX use their own shifted flow schedule; schedule types are for noise-prediction models"
)


@dataclass(frozen=True)
class ModelFit:
    """The loaded model's sampling facts for the panel. The defaults describe an SD-family model."""

    family_label: str = ""  # "FLUX.1 dev", "SD 3.5 Medium"; "" where the family's short name says it
    flow: bool = False  # flow matching: the model panel says so instead of a prediction type
    guidance_kind: str = GUIDANCE_CFG  # "cfg" | "distilled" | "none"
    greyed_samplers: tuple[tuple[str, str], ...] = ()  # (sampler, why it cannot run this model)
    schedule_reason: str = ""  # why no schedule type but Automatic applies ("" : per sampler, as SD)
    default_sampler: str = DEFAULT_SAMPLER
    size_step: int = SD_SIZE_STEP  # width and height are multiples of this

    def sampler_reason(self, sampler: str) -> str:
        """Why ``sampler`` is greyed out for this model; "" when it can run it."""
        return dict(self.greyed_samplers).get(sampler, "")


def fit_for(family: str, variant: flow_models.FlowVariant | None, vae_scale_factor: int = 8) -> ModelFit:
    """The fit of a model of ``family`` (``variant``: ``flow_models.pipe_variant`` of its pipeline)."""
    if not flow_models.is_flow_family(family) or variant is None:
        return ModelFit()
    if variant.guidance_embedded:
        guidance = GUIDANCE_DISTILLED
    elif variant.uses_cfg:
        guidance = GUIDANCE_CFG
    else:
        guidance = GUIDANCE_NONE
    reasons = flow_models.samplers_for(family, sampler_names())
    return ModelFit(
        family_label=variant.variant,
        flow=True,
        guidance_kind=guidance,
        greyed_samplers=tuple((name, why) for name, why in reasons.items() if why),
        schedule_reason=FLOW_SCHEDULE_REASON,
        default_sampler=flow_models.DEFAULT_FLOW_SAMPLER,
        # latents go in as 2x2 patches (flow_models.prepare_flow_schedule checks the same); a request's
        # sides are multiples of 8 whatever the model
        size_step=max(SD_SIZE_STEP, int(vae_scale_factor) * 2),
    )


def fitted_request(request: GenerationRequest, fit: ModelFit | None) -> tuple[GenerationRequest, str]:
    """``request`` with what the model cannot take switched to what it can, and the sentence saying
    what changed ("" when nothing did). Sizes round down to the model's multiple."""
    if fit is None:
        return request, ""
    changes: dict = {}
    notes = []
    label = fit.family_label or "This model"
    if fit.sampler_reason(request.sampler):
        changes["sampler"] = fit.default_sampler
        notes.append(f"{label} cannot use the {request.sampler} sampler; using {fit.default_sampler}.")
    hires = request.hires
    if hires is not None and hires.sampler and fit.sampler_reason(hires.sampler):
        changes["hires"] = replace(hires, sampler="")
        notes.append(f"The hires pass cannot use {hires.sampler} on {label}; it uses the first pass's.")
    if fit.schedule_reason and request.schedule != DEFAULT_SCHEDULE:
        changes["schedule"] = DEFAULT_SCHEDULE
        notes.append(f"The {request.schedule} schedule type does not apply to {label}; using Automatic.")
    if fit.guidance_kind == GUIDANCE_NONE and request.guidance != 1.0:
        changes["guidance"] = 1.0
        notes.append(f"{label} takes no guidance; CFG is 1.")
    sides = {
        name: max(fit.size_step, side - side % fit.size_step)
        for name, side in (("width", request.width), ("height", request.height))
        if side and side % fit.size_step
    }
    if sides:
        changes.update(sides)
        size = f"{sides.get('width', request.width)} × {sides.get('height', request.height)}"
        notes.append(f"{label} needs sides in multiples of {fit.size_step}; the size is {size}.")
    if not changes:
        return request, ""
    return request.replace(**changes), " ".join(notes)


def fitted_draft(draft: Draft, fit: ModelFit | None) -> tuple[Draft, str]:
    """The draft fitted to the model (``fitted_request``) and the sentence; the same draft and "" when
    it already fits."""
    request, note = fitted_request(draft.request, fit)
    if not note:
        return draft, ""
    return replace(draft, request=request), note
