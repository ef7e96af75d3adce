"""The one sampling loop: denoiser -> guidance -> scheduler step -> (inpaint blend) -> previews and events.

It mirrors diffusers' Stable Diffusion pipelines call for call (so a seed gives the same image as a
bare pipeline) but keeps what they do not hand out: the x0 estimate of every step, a cancel check
before every model call, a count of *real* steps for samplers that call the model twice per step,
and (optionally) the trajectory, so a generation can be replayed and branched. The network is only
reached through ``model.denoiser``; the text through ``PromptSchedule.at(step)``.

A few-step sampler (LCM, TCD) is a ``SamplerSpec`` in ``engine.samplers`` (its scheduler returns
``denoised``, which ``estimate_x0`` already reads); a guidance variant (CFG rescale, guidance
intervals) is a change to ``guide`` alone.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ldm_studio.engine.errors import CancelledError
from ldm_studio.engine.events import Event, Step
from ldm_studio.engine.generation.conditioning import PromptSchedule, for_batch
from ldm_studio.engine.generation.decode import decode
from ldm_studio.engine.generation.denoiser import Denoiser, NetworkText, classifier_free
from ldm_studio.engine.generation.schedule import current_sigma, noise_level, real_step_done, sigma_space
from ldm_studio.engine.generation.start import SourceImage, Start
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.preview import (
    PreviewMode,
    PreviewSettings,
    fast_preview,
    tile,
    to_uint8,
    x0_from_model_output,
)
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.samplers import step_options
from ldm_studio.engine.trajectory import KeptStep, Trajectory

EventSink = Callable[[Event], None]
StopCheck = Callable[[], bool]


@dataclass
class SamplingPlan:
    """What the stages before the loop decided: where it starts, with which sampler and text."""

    request: GenerationRequest
    scheduler: Any
    start: Start
    prompts: PromptSchedule
    generators: list[torch.Generator]
    noise: torch.Tensor  # the seed's noise: inpainting re-noises the known region with it
    source: SourceImage | None = None


@dataclass
class BatchText:
    """The per-step text as the network takes it, made once per distinct conditioning."""

    denoiser: Denoiser
    prompts: PromptSchedule
    batch: int
    guided: bool
    size: tuple[int, int]
    guidance_cond: torch.Tensor | None = None  # an LCM UNet's w-embedding, the same at every step
    made: dict[int, NetworkText] = field(default_factory=dict)

    def at(self, step: int) -> NetworkText:
        conditioning = self.prompts.at(step)
        key = id(conditioning)
        if key not in self.made:
            batched = for_batch(conditioning, self.batch, self.guided)
            self.made[key] = self.denoiser.text_for(batched, self.size)
            if self.guidance_cond is not None:
                self.made[key] = dataclasses.replace(self.made[key], timestep_cond=self.guidance_cond)
        return self.made[key]


def guide(prediction: torch.Tensor, guidance: float) -> torch.Tensor:
    """Classifier-free guidance over a [unconditional; conditional] batch."""
    unconditional, conditional = prediction.chunk(2)
    return unconditional + guidance * (conditional - unconditional)


def estimate_x0(
    scheduler: Any, output: Any, model_output: torch.Tensor, sample: torch.Tensor, t: Any
) -> torch.Tensor:
    """The scheduler's own x0 where it returns one, else the inverted forward process."""
    x0 = getattr(output, "pred_original_sample", None)
    if x0 is None:
        x0 = getattr(output, "denoised", None)
    if x0 is not None:
        return x0
    alpha_cumprod = float(scheduler.alphas_cumprod[int(round(float(t)))])
    return x0_from_model_output(model_output, sample, alpha_cumprod, scheduler.config.prediction_type)


def render_preview(
    model: LoadedModel, x0: torch.Tensor, settings: PreviewSettings, size: tuple[int, int]
) -> np.ndarray | None:
    if settings.mode is PreviewMode.FULL:
        return tile(to_uint8(decode(model, x0)))
    if settings.mode is PreviewMode.TINY and settings.tiny_decoder:
        from ldm_studio.engine.tiny_decoding import tiny_preview

        image = tiny_preview(model, x0, settings.tiny_decoder)
        if image is not None:
            return image
    if model.projection is None:
        return None
    return fast_preview(x0, model.projection, size)


@torch.no_grad()
def sample(
    model: LoadedModel,
    plan: SamplingPlan,
    on_event: EventSink,
    should_stop: StopCheck,
    preview: PreviewSettings,
    started_at: float,
    trajectory: Trajectory | None = None,
) -> torch.Tensor:
    """The reverse diffusion in latent space; returns the final latents or raises CancelledError."""
    request, scheduler, source = plan.request, plan.scheduler, plan.source
    denoiser = model.denoiser
    guided = classifier_free(denoiser, request.guidance)
    size = (request.height, request.width)
    timesteps = scheduler.timesteps
    order = getattr(scheduler, "order", 1)
    embedded = (
        denoiser.guidance_condition(request.guidance, request.batch_size, plan.prompts.first.embeds.dtype)
        if getattr(denoiser, "embeds_guidance", False)
        else None
    )
    text = BatchText(denoiser, plan.prompts, request.batch_size, guided, size, embedded)
    extra = source.network_input(2 if guided else 1) if source is not None else None
    step_kwargs = step_options(request.sampler, plan.generators, request.extras)
    latents = plan.start.latents.to(model.placement.device, plan.prompts.first.embeds.dtype)

    done = plan.start.done
    for index in range(plan.start.begin, len(timesteps)):
        t = timesteps[index]
        if should_stop():
            raise CancelledError(done)
        model_input = torch.cat([latents] * 2) if guided else latents
        model_input = scheduler.scale_model_input(model_input, t)
        # bf16 under autocast: guidance and the sampler work in the latents' dtype
        prediction = denoiser.predict(model_input, t, text.at(done), extra).to(latents.dtype)
        if guided:
            prediction = guide(prediction, request.guidance)
        noisy = latents
        output = scheduler.step(prediction, t, latents, **step_kwargs, return_dict=True)
        latents = output.prev_sample
        if source is not None and source.blended:
            latents = put_back_known(scheduler, source, latents, plan.noise, timesteps, index)
        if not real_step_done(index, len(timesteps), request.steps, order):
            continue
        done += 1
        x0 = estimate_x0(scheduler, output, prediction, noisy, t)
        if source is not None and source.latent_mask is not None:
            x0 = source.latent_mask * x0 + (1 - source.latent_mask) * source.latents
        report_step(model, plan, latents, x0, index, done, preview, started_at, trajectory, on_event)
    return latents


def put_back_known(
    scheduler: Any,
    source: SourceImage,
    latents: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    index: int,
) -> torch.Tensor:
    """Ordinary models inpaint by putting the known region back, noised to the next level."""
    known = source.latents
    if index + 1 < len(timesteps):
        known = scheduler.add_noise(source.latents, noise, timesteps[index + 1 : index + 2])
    return source.latent_mask * latents + (1 - source.latent_mask) * known


def report_step(
    model: LoadedModel,
    plan: SamplingPlan,
    latents: torch.Tensor,
    x0: torch.Tensor,
    index: int,
    done: int,
    preview: PreviewSettings,
    started_at: float,
    trajectory: Trajectory | None,
    on_event: EventSink,
) -> None:
    """After real step ``done`` (model call ``index``): previews, the kept step, the ``Step`` event."""
    request, scheduler = plan.request, plan.scheduler
    timesteps = scheduler.timesteps
    t = timesteps[index]
    size = (request.height, request.width)
    sigma = current_sigma(scheduler)
    image = noisy = None
    if preview.wants(done, request.steps):
        image = render_preview(model, x0, preview, size)
        if trajectory is not None and model.projection is not None:
            level = noise_level(scheduler, timesteps, index + 1)
            scale = math.sqrt(level**2 + 1) if sigma_space(scheduler) else 1.0
            noisy = fast_preview(latents / scale, model.projection, size)
    elapsed = time.perf_counter() - started_at
    if trajectory is not None:
        kept = KeptStep(done, float(t), sigma, elapsed, next_call=index + 1)
        kept.sigma = noise_level(scheduler, timesteps, index + 1)
        kept.alpha_cumprod = -1.0 if sigma_space(scheduler) else 1.0 / (1.0 + kept.sigma**2)
        trajectory.record(kept, latents, x0, scheduler, plan.generators)
    on_event(Step(done, request.steps, elapsed, float(t), sigma, image, noisy))
