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
    takes_gamma: bool = False  # TCD: its "eta" is the paper's gamma (stochasticity per step)
    # the schedule types (see SCHEDULES) its scheduler can take; "Automatic" is always allowed
    schedules: tuple[str, ...] = ()


_DPMPP = {"algorithm_type": "dpmsolver++", "solver_order": 2}
# Schedule types as A1111 names them; what each one sets on a diffusers scheduler. "Automatic" keeps
# the sampler's own spacing (so "DPM++ 2M Karras" and every older request keep their pixels).
_NO_SIGMA_SCHEDULE = {"use_karras_sigmas": False, "use_exponential_sigmas": False, "use_beta_sigmas": False}
SCHEDULES: dict[str, dict[str, Any]] = {
    "Automatic": {},
    "Karras": {**_NO_SIGMA_SCHEDULE, "use_karras_sigmas": True},
    "Exponential": {**_NO_SIGMA_SCHEDULE, "use_exponential_sigmas": True},
    # A1111's sgm_uniform takes evenly spaced timesteps ending at the last one: diffusers' "trailing"
    "SGM Uniform": {**_NO_SIGMA_SCHEDULE, "timestep_spacing": "trailing"},
    "Beta": {**_NO_SIGMA_SCHEDULE, "use_beta_sigmas": True},
}
DEFAULT_SCHEDULE = "Automatic"
_SIGMA_SCHEDULES = ("Karras", "Exponential", "SGM Uniform", "Beta")
_SPACING_ONLY = ("SGM Uniform",)  # schedulers without sigma lists still take timestep_spacing
DEFAULT_TCD_GAMMA = 0.3  # the TCD authors' default, as in diffusers and ComfyUI's TCD nodes

SAMPLERS: dict[str, SamplerSpec] = {
    "Euler": SamplerSpec(
        "EulerDiscreteScheduler",
        {"use_karras_sigmas": False},
        takes_generator=True,
        schedules=_SIGMA_SCHEDULES,
    ),
    "Euler a": SamplerSpec("EulerAncestralDiscreteScheduler", takes_generator=True, schedules=_SPACING_ONLY),
    "DPM++ 2M": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {**_DPMPP, "use_karras_sigmas": False},
        takes_generator=True,
        schedules=_SIGMA_SCHEDULES,
    ),
    "DPM++ 2M Karras": SamplerSpec(
        "DPMSolverMultistepScheduler", {**_DPMPP, "use_karras_sigmas": True}, takes_generator=True
    ),
    "DPM++ 2M SDE Karras": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
        takes_generator=True,
    ),
    "DDIM": SamplerSpec("DDIMScheduler", takes_generator=True, takes_eta=True, schedules=_SPACING_ONLY),
    "UniPC": SamplerSpec("UniPCMultistepScheduler", schedules=_SIGMA_SCHEDULES),
    "Heun": SamplerSpec("HeunDiscreteScheduler", {"use_karras_sigmas": False}, schedules=_SIGMA_SCHEDULES),
    "DPM2": SamplerSpec("KDPM2DiscreteScheduler", {"use_karras_sigmas": False}, schedules=_SIGMA_SCHEDULES),
    "LMS": SamplerSpec("LMSDiscreteScheduler", {"use_karras_sigmas": False}, schedules=_SIGMA_SCHEDULES),
    "PNDM": SamplerSpec("PNDMScheduler", {"skip_prk_steps": True}, schedules=_SPACING_ONLY),
    "DPM++ 2M SDE": SamplerSpec(
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "use_karras_sigmas": False},
        takes_generator=True,
        schedules=_SIGMA_SCHEDULES,
    ),
    # Few-step samplers for consistency-distilled models (LCM, LCM-LoRA; TCD, Hyper-SD). Their own
    # skipping schedule over the distillation's 50 steps is the only one they take.
    "LCM": SamplerSpec("LCMScheduler", takes_generator=True),
    "TCD": SamplerSpec("TCDScheduler", takes_generator=True, takes_gamma=True),
}

DEFAULT_SAMPLER = "Euler a"


def sampler_names() -> list[str]:
    return list(SAMPLERS)


def schedule_names() -> list[str]:
    return list(SCHEDULES)


def schedules_for(sampler: str) -> list[str]:
    """The schedule types sampler ``sampler`` can run with ("Automatic" first); [] for an unknown one."""
    spec = SAMPLERS.get(sampler)
    return [] if spec is None else [DEFAULT_SCHEDULE, *spec.schedules]


def check_schedule_choice(sampler: str, schedule: str) -> None:
    """Raise ValueError with a sentence when ``schedule`` cannot go with ``sampler``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule type {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if schedule in schedules_for(sampler):
        return
    if SAMPLERS[sampler].overrides.get("use_karras_sigmas"):
        plain = sampler.removesuffix(" Karras")
        raise ValueError(
            f"{sampler} already names its schedule (Karras); choose {plain} with the {schedule} schedule type"
        )
    others = ", ".join(schedules_for(sampler))
    raise ValueError(f"the {sampler} sampler cannot use the {schedule} schedule type; it takes {others}")


def tcd_gamma(extras: dict[str, Any]) -> float:
    """The request's TCD gamma (``extras["tcd_gamma"]``), 0.3 when unset; 0 is deterministic."""
    value = extras.get("tcd_gamma", DEFAULT_TCD_GAMMA)
    try:
        gamma = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"TCD gamma must be a number between 0 and 1, got {value!r}") from None
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"TCD gamma must be between 0 and 1, got {gamma:g}")
    return gamma


def step_options(name: str, generators: list[Any], extras: dict[str, Any] | None = None) -> dict[str, Any]:
    """The extra keyword arguments sampler ``name``'s ``scheduler.step`` takes (see ``SamplerSpec``)."""
    spec = SAMPLERS[name]
    options: dict[str, Any] = {}
    if spec.takes_eta:
        options["eta"] = 0.0
    if spec.takes_gamma:
        options["eta"] = tcd_gamma(extras or {})
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


def make_scheduler(name: str, base_config: Any, schedule: str = DEFAULT_SCHEDULE) -> Any:
    """A fresh scheduler for sampler ``name`` with schedule type ``schedule``, keeping the model's
    noise schedule and prediction type."""
    try:
        spec = SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}") from None
    check_schedule_choice(name, schedule)
    import diffusers  # imported here so the window can list sampler names without loading torch

    scheduler_class = getattr(diffusers, spec.scheduler_class)
    config = explicit_config(base_config)
    config.update(spec.overrides)
    config.update(SCHEDULES[schedule])
    try:
        return scheduler_class.from_config(config)
    except ImportError as error:  # diffusers' beta sigmas need scipy
        missing = f"the {schedule} schedule type needs a package that is not installed: {error}"
        raise ValueError(missing) from None


# Other tools' schedule names (A1111 labels, ComfyUI / InvokeAI keys) -> ours.
_SCHEDULE_ALIASES = {
    "automatic": "Automatic",
    "normal": "Automatic",
    "karras": "Karras",
    "exponential": "Exponential",
    "sgm uniform": "SGM Uniform",
    "sgm_uniform": "SGM Uniform",
    "beta": "Beta",
}


def canonical(sampler: str, schedule: str | None) -> tuple[str, str]:
    """(sampler, schedule type) as our tables hold them, from names another tool wrote.

    A1111 1.9+ writes "Sampler: DPM++ 2M, Schedule type: Karras"; older versions "DPM++ 2M Karras"
    (kept as it is: it is one of our names and gives the same pixels). A schedule we do not have, or
    one the sampler cannot take, falls back to "Automatic" unless the combined old-style name exists.
    """
    wanted = _SCHEDULE_ALIASES.get((schedule or "").strip().lower(), DEFAULT_SCHEDULE)
    if wanted == DEFAULT_SCHEDULE:
        return sampler, DEFAULT_SCHEDULE
    if wanted in schedules_for(sampler):
        return sampler, wanted
    combined = f"{sampler} {wanted}"
    if combined in SAMPLERS:
        return combined, DEFAULT_SCHEDULE
    return sampler, DEFAULT_SCHEDULE


def a1111_settings(sampler: str, schedule: str, extras: dict[str, Any]) -> dict[str, str]:
    """The ``parameters`` keys a sampler choice adds after ``Sampler`` (none for Automatic)."""
    settings: dict[str, str] = {}
    if schedule != DEFAULT_SCHEDULE:
        settings["Schedule type"] = schedule
    if sampler in SAMPLERS and SAMPLERS[sampler].takes_gamma:
        settings["TCD gamma"] = f"{tcd_gamma(extras):g}"
    return settings


def sampler_extras(settings: dict[str, str], extras: dict[str, Any]) -> dict[str, Any]:
    """Request changes from the sampler options an image's ``parameters`` wrote (``TCD gamma``)."""
    try:
        gamma = float(settings["TCD gamma"])
    except (KeyError, TypeError, ValueError):
        return {}
    return {"extras": {**extras, "tcd_gamma": gamma}} if 0.0 <= gamma <= 1.0 else {}
