"""Samplers by the names users know, mapped onto diffusers schedulers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplerSpec:
    scheduler_class: str
    overrides: dict[str, Any] = field(default_factory=dict)
    # what the scheduler's ``step`` accepts beyond (output, t, sample): stochastic samplers draw
    # their per-step noise from the request's generators; DDIM takes eta (0: deterministic DDIM)
    takes_generator: bool = False
    takes_eta: bool = False


_DPMPP = {"algorithm_type": "dpmsolver++", "solver_order": 2}

SAMPLERS: dict[str, SamplerSpec] = {
    "Euler": SamplerSpec("EulerDiscreteScheduler", {"use_karras_sigmas": False}, takes_generator=True),
    "Euler a": SamplerSpec("EulerAncestralDiscreteScheduler", takes_generator=True),
    "DPM++ 2M": SamplerSpec(
        "DPMSolverMultistepScheduler", {**_DPMPP, "use_karras_sigmas": False}, takes_generator=True
    ),
    "DPM++ 2M Karras": SamplerSpec(
        "DPMSolverMultistepScheduler", {**_DPMPP, "use_karras_sigmas": True}, takes_generator=True
    ),
    "DPM++ 2M SDE Karras": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
        takes_generator=True,
    ),
    "DDIM": SamplerSpec("DDIMScheduler", takes_generator=True, takes_eta=True),
    "UniPC": SamplerSpec("UniPCMultistepScheduler"),
    "Heun": SamplerSpec("HeunDiscreteScheduler", {"use_karras_sigmas": False}),
    "DPM2": SamplerSpec("KDPM2DiscreteScheduler", {"use_karras_sigmas": False}),
    "LMS": SamplerSpec("LMSDiscreteScheduler", {"use_karras_sigmas": False}),
    "PNDM": SamplerSpec("PNDMScheduler", {"skip_prk_steps": True}),
}

DEFAULT_SAMPLER = "Euler a"


def sampler_names() -> list[str]:
    return list(SAMPLERS)


def step_options(name: str, generators: list[Any]) -> dict[str, Any]:
    """The extra keyword arguments sampler ``name``'s ``scheduler.step`` takes (see ``SamplerSpec``)."""
    spec = SAMPLERS[name]
    options: dict[str, Any] = {}
    if spec.takes_eta:
        options["eta"] = 0.0
    if spec.takes_generator:
        options["generator"] = generators
    return options


def explicit_config(config: Any) -> dict[str, Any]:
    """A scheduler config with every value pinned.

    diffusers drops keys listed in ``_use_default_values`` when switching scheduler class, so the new
    class's own defaults win (PNDM's "leading" spacing becomes Euler's "linspace"): the same weights
    then give different images depending on how the model was loaded. Pinning keeps them equal.
    """
    return {key: value for key, value in dict(config).items() if key != "_use_default_values"}


def make_scheduler(name: str, base_config: Any) -> Any:
    """A fresh scheduler for sampler ``name``, keeping the model's schedule and prediction type."""
    try:
        spec = SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}") from None
    import diffusers  # imported here so the window can list sampler names without loading torch

    scheduler_class = getattr(diffusers, spec.scheduler_class)
    config = explicit_config(base_config)
    config.update(spec.overrides)
    return scheduler_class.from_config(config)
