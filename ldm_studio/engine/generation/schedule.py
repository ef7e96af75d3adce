"""The sampler's schedule: which timesteps it visits, two repairs it needs, and the real-step arithmetic.

Some samplers call the model more than once per user-visible step (Heun, DPM2: twice; PNDM: one
extra warm-up call), so "model call i" and "step k" are kept apart here, in pure functions.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ldm_studio.engine.errors import GenerationError
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.samplers import DEFAULT_SCHEDULE, make_scheduler, step_options

# Past this largest noise level a float32 sigma list cannot hold the small sigmas' squares beside it.
HUGE_SIGMA = 1e3


def scheduler_for(model: LoadedModel, sampler: str, schedule: str = DEFAULT_SCHEDULE) -> Any:
    """Schedulers are built once per sampler, schedule type and model; set_timesteps resets their state."""
    key = sampler if schedule == DEFAULT_SCHEDULE else f"{sampler} / {schedule}"
    if key not in model.schedulers:
        try:
            if model.family in ("sd3", "flux"):  # flow matching: its own schedulers (engine.flow_models)
                from ldm_studio.engine.flow_models import flow_scheduler

                model.schedulers[key] = flow_scheduler(sampler, model.base_scheduler_config, schedule)
                return model.schedulers[key]
            model.schedulers[key] = make_scheduler(sampler, model.base_scheduler_config, schedule)
        except ValueError as error:  # an unknown name or a pairing the sampler cannot take
            raise GenerationError(as_sentence(error)) from None
    return model.schedulers[key]


def as_sentence(error: ValueError) -> str:
    message = str(error)
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def fresh_schedule(model: LoadedModel, request: GenerationRequest) -> Any:
    """The request's sampler with its timesteps set for ``request.steps``, repaired and checked."""
    scheduler = scheduler_for(model, request.sampler, request.schedule)
    try:  # the sampler's own options (TCD's gamma) are checked before any work, too
        step_options(request.sampler, [], request.extras)
    except ValueError as error:
        raise GenerationError(as_sentence(error)) from None
    if hasattr(scheduler, "prepare"):  # a flow scheduler: size check, FLUX's resolution shift
        from ldm_studio.engine.flow_models import prepare_flow_schedule

        prepare_flow_schedule(scheduler, model, request)
    scheduler.set_timesteps(request.steps, device=model.placement.device)
    check_schedule(scheduler, request)
    keep_small_sigmas_exact(scheduler)
    return scheduler


def check_schedule(scheduler: Any, request: GenerationRequest) -> None:
    """Refuse a Karras (or exponential, beta) schedule that collapses on this model, in words, before
    any work is done.

    On a schedule whose last timestep has almost no signal left (the bundled model's cosine schedule
    reaches sigma ~2e4), Karras spacing puts most steps on that same last timestep, and the DPM
    solvers then step past their own list.
    """
    spacing = next((n for n, key in _SIGMA_FLAGS.items() if scheduler.config.get(key)), None)
    if spacing is None:
        return
    timesteps = scheduler.timesteps.tolist()
    if len(set(timesteps)) < len(timesteps) and request.schedule == DEFAULT_SCHEDULE:
        raise GenerationError(  # the sampler's own name says Karras ("DPM++ 2M Karras")
            f"{request.sampler} does not work with this model's noise schedule: its {spacing} spacing "
            f"puts several of the {request.steps} steps on the same timestep. Choose DPM++ 2M or Euler a."
        )
    if len(set(timesteps)) < len(timesteps):
        raise GenerationError(
            f"The {request.schedule} schedule type does not work with this model's noise schedule: it puts "
            f"several of the {request.steps} steps on the same timestep. Choose Automatic or SGM Uniform."
        )


_SIGMA_FLAGS = {
    "Karras": "use_karras_sigmas",
    "exponential": "use_exponential_sigmas",
    "beta": "use_beta_sigmas",
}


def keep_small_sigmas_exact(scheduler: Any) -> None:
    """Hold a sigma-space sampler's sigmas in float64 when the largest is huge.

    Euler a computes sigma_down = sqrt(sigma_to² − sigma_up²), where sigma_up² = sigma_to²·(1 −
    sigma_to²/sigma_from²): with sigma_from² ~4e8 (the bundled model) float32 loses the correction,
    the difference can round below zero and the image becomes NaN (3 steps did). The sigmas are 0-d
    values, so the latents stay float32.
    """
    sigmas = getattr(scheduler, "sigmas", None)
    if (
        isinstance(sigmas, torch.Tensor)
        and sigmas.dtype == torch.float32
        and sigmas.device.type != "mps"  # no float64 there
        and sigma_space(scheduler)
        and float(sigmas.max()) > HUGE_SIGMA
    ):
        scheduler.sigmas = sigmas.double()


def sigma_space(scheduler: Any) -> bool:
    """Whether the sampler holds latents as x0 + sigma * noise (Euler family) rather than VP form."""
    return float(scheduler.init_noise_sigma) > 1.0


def real_step_done(index: int, timestep_count: int, steps: int, order: int) -> bool:
    """Whether model call ``index`` completes a user-visible step (diffusers' progress-bar rule)."""
    warmup = timestep_count - steps * order
    return index == timestep_count - 1 or ((index + 1) > warmup and (index + 1) % order == 0)


def call_after_step(step: int, timestep_count: int, steps: int, order: int) -> int:
    """The model-call index that follows real step ``step`` (0 for step 0)."""
    done = 0
    for index in range(timestep_count):
        if done == step:
            return index
        if real_step_done(index, timestep_count, steps, order):
            done += 1
    return timestep_count


def begin_at(scheduler: Any, begin: int) -> None:
    """Tell a scheduler that keeps a step index where in its list the run starts (img2img, branch)."""
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)


def noise_level(scheduler: Any, timesteps: torch.Tensor, next_call: int) -> float:
    """VP-equivalent sigma of the latents about to enter model call ``next_call`` (0 at the end)."""
    if next_call >= len(timesteps):
        return 0.0
    if hasattr(scheduler, "sigma_at"):  # flow matching (engine.flow_models): about t / 1000
        return scheduler.sigma_at(timesteps[next_call])
    if sigma_space(scheduler) and getattr(scheduler, "step_index", None) is not None:
        return float(scheduler.sigmas[scheduler.step_index])
    alpha = float(scheduler.alphas_cumprod[int(round(float(timesteps[next_call])))])
    return math.sqrt((1 - alpha) / alpha)


def current_sigma(scheduler: Any) -> float | None:
    """The sigma a sigma-keeping sampler has reached (what ``Step.sigma`` reports), else None."""
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is None or getattr(scheduler, "step_index", None) is None:
        return None
    return float(sigmas[min(scheduler.step_index, len(sigmas) - 1)])
