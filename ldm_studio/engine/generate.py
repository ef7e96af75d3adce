"""One generation: text -> latents -> denoising loop with live x0 previews -> decoded images.

The loop mirrors diffusers' Stable Diffusion pipelines step for step (so a seed gives the same image
as a bare pipeline call) but keeps what they do not hand out: the x0 estimate of every step, a
cancel check between every UNet call, and a count of *real* steps for samplers that call the model
twice per step.
"""

from __future__ import annotations

import gc
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from ldm_studio import __version__
from ldm_studio.engine.errors import CancelledError, GenerationError
from ldm_studio.engine.events import Cancelled, Event, Failed, Finished, Started, Step
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
from ldm_studio.engine.samplers import make_scheduler

log = logging.getLogger(__name__)

EventSink = Callable[[Event], None]
StopCheck = Callable[[], bool]
EMBEDDING_CACHE_SIZE = 16

OOM_HINT = (
    "Try a smaller size or batch, turn on VAE tiling or attention slicing in the model settings, "
    "or use half precision (fp16/bf16)."
)


@dataclass
class Conditioning:
    embeds: torch.Tensor  # [negative; positive] when guidance is on
    added: dict[str, torch.Tensor] | None  # SDXL's pooled text and size conditioning


def resolve(request: GenerationRequest, model: LoadedModel) -> GenerationRequest:
    """A request with every choice made: a seed, a size, the model recorded."""
    request = request.with_seed()
    size = model.native_size
    return request.replace(
        width=request.width or size,
        height=request.height or size,
        model=request.model or str(model.path),
    )


def scheduler_for(model: LoadedModel, sampler: str) -> Any:
    """Schedulers are built once per sampler and model; set_timesteps resets their state."""
    if sampler not in model.schedulers:
        model.schedulers[sampler] = make_scheduler(sampler, model.base_scheduler_config)
    return model.schedulers[sampler]


@torch.no_grad()
def encode_text(model: LoadedModel, prompt: str, negative: str, guided: bool) -> Conditioning:
    key = (prompt, negative, guided)
    cached = model.embeddings.get(key)
    if cached is not None:
        return cached
    pipe, device = model.pipe, model.placement.device
    if model.family == "sdxl":
        positive, negative_embeds, pooled, negative_pooled = pipe.encode_prompt(
            prompt=prompt,
            device=device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=guided,
            negative_prompt=negative or None,
        )
        added = {"text_embeds": torch.cat([negative_pooled, pooled]) if guided else pooled}
    else:
        positive, negative_embeds = pipe.encode_prompt(prompt, device, 1, guided, negative or None)
        added = None
    embeds = torch.cat([negative_embeds, positive]) if guided else positive
    conditioning = Conditioning(embeds, added)
    if len(model.embeddings) >= EMBEDDING_CACHE_SIZE:
        model.embeddings.pop(next(iter(model.embeddings)))
    model.embeddings[key] = conditioning
    return conditioning


def _expand(conditioning: Conditioning, batch: int, guided: bool, size: tuple[int, int], model: LoadedModel):
    """Repeat the (one-prompt) conditioning for every image of the batch, in the pipeline's order."""
    halves = 2 if guided else 1

    def repeat(tensor: torch.Tensor) -> torch.Tensor:
        parts = tensor.chunk(halves)
        return torch.cat([part.repeat_interleave(batch, dim=0) for part in parts])

    embeds = repeat(conditioning.embeds)
    added = None
    if conditioning.added is not None:
        pipe = model.pipe
        height, width = size
        time_ids = pipe._get_add_time_ids(
            (height, width),
            (0, 0),
            (height, width),
            dtype=embeds.dtype,
            text_encoder_projection_dim=pipe.text_encoder_2.config.projection_dim,
        ).to(model.placement.device)
        added = {
            "text_embeds": repeat(conditioning.added["text_embeds"]),
            "time_ids": time_ids.repeat(batch * halves, 1),
        }
    return embeds, added


def initial_noise(
    model: LoadedModel, request: GenerationRequest, dtype: torch.dtype
) -> tuple[torch.Tensor, list]:
    """Noise from one CPU generator per image (seed + i), so a seed gives the same image anywhere."""
    from diffusers.utils.torch_utils import randn_tensor

    generators = [torch.Generator("cpu").manual_seed(request.seed_for(i)) for i in range(request.batch_size)]
    factor = model.vae_scale_factor
    shape = (
        request.batch_size,
        model.pipe.unet.config.in_channels,
        request.height // factor,
        request.width // factor,
    )
    noise = randn_tensor(shape, generator=generators, device=model.placement.device, dtype=dtype)
    return noise, generators


def real_step_done(index: int, timestep_count: int, steps: int, order: int) -> bool:
    """Whether model call ``index`` completes a user-visible step (diffusers' progress-bar rule)."""
    warmup = timestep_count - steps * order
    return index == timestep_count - 1 or ((index + 1) > warmup and (index + 1) % order == 0)


def estimate_x0(
    scheduler: Any, output: Any, model_output: torch.Tensor, sample: torch.Tensor, t: Any
) -> torch.Tensor:
    x0 = getattr(output, "pred_original_sample", None)
    if x0 is None:
        x0 = getattr(output, "denoised", None)
    if x0 is not None:
        return x0
    alphas = scheduler.alphas_cumprod
    alpha_cumprod = float(alphas[int(round(float(t)))])
    return x0_from_model_output(model_output, sample, alpha_cumprod, scheduler.config.prediction_type)


@torch.no_grad()
def decode(model: LoadedModel, latents: torch.Tensor) -> torch.Tensor:
    """Latents (as the UNet sees them) -> images in [-1, 1]; retried in fp32 once if half precision fails."""
    vae = model.pipe.vae
    scaling = float(vae.config.scaling_factor or 1.0)
    shift = float(getattr(vae.config, "shift_factor", 0.0) or 0.0)
    raw = latents / scaling + shift
    vae_dtype = next(vae.parameters()).dtype
    images = vae.decode(raw.to(vae_dtype), return_dict=False)[0]
    if torch.isfinite(images).all() or vae_dtype == torch.float32:
        return images
    log.warning("VAE decode gave non-finite pixels in %s; retrying in float32", vae_dtype)
    vae.to(torch.float32)
    try:
        return vae.decode(raw.float(), return_dict=False)[0]
    finally:
        vae.to(vae_dtype)


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(array) for array in to_uint8(images)]


def render_preview(
    model: LoadedModel, x0: torch.Tensor, settings: PreviewSettings, size: tuple[int, int]
) -> np.ndarray | None:
    if settings.mode is PreviewMode.FULL:
        return tile(to_uint8(decode(model, x0)))
    if model.projection is None:
        return None
    return fast_preview(x0, model.projection, size)


def denoise(
    model: LoadedModel,
    request: GenerationRequest,
    on_event: EventSink,
    should_stop: StopCheck,
    preview: PreviewSettings,
    started_at: float,
) -> torch.Tensor:
    """The reverse diffusion in latent space; returns the final latents or raises CancelledError."""
    pipe, device = model.pipe, model.placement.device
    guided = request.guidance > 1.0
    scheduler = scheduler_for(model, request.sampler)
    pipe.scheduler = scheduler  # so the pipeline helpers below see the sampler in use
    scheduler.set_timesteps(request.steps, device=device)
    timesteps = scheduler.timesteps
    size = (request.height, request.width)

    conditioning = encode_text(model, request.prompt, request.negative_prompt, guided)
    embeds, added = _expand(conditioning, request.batch_size, guided, size, model)
    noise, generators = initial_noise(model, request, embeds.dtype)
    latents = noise * scheduler.init_noise_sigma
    step_kwargs = pipe.prepare_extra_step_kwargs(generators, 0.0)

    order = getattr(scheduler, "order", 1)
    done = 0
    for index, t in enumerate(timesteps):
        if should_stop():
            raise CancelledError(done)
        model_input = torch.cat([latents] * 2) if guided else latents
        model_input = scheduler.scale_model_input(model_input, t)
        prediction = pipe.unet(
            model_input, t, encoder_hidden_states=embeds, added_cond_kwargs=added, return_dict=False
        )[0]
        if guided:
            unconditional, conditional = prediction.chunk(2)
            prediction = unconditional + request.guidance * (conditional - unconditional)
        sample = latents
        output = scheduler.step(prediction, t, latents, **step_kwargs, return_dict=True)
        latents = output.prev_sample
        if not real_step_done(index, len(timesteps), request.steps, order):
            continue
        done += 1
        image = None
        if preview.wants(done, request.steps):
            x0 = estimate_x0(scheduler, output, prediction, sample, t)
            image = render_preview(model, x0, preview, size)
        sigmas = getattr(scheduler, "sigmas", None)
        sigma = None
        if sigmas is not None and getattr(scheduler, "step_index", None) is not None:
            sigma = float(sigmas[min(scheduler.step_index, len(sigmas) - 1)])
        on_event(Step(done, request.steps, time.perf_counter() - started_at, float(t), sigma, image))
    return latents


def generate(
    model: LoadedModel,
    request: GenerationRequest,
    on_event: EventSink = lambda event: None,
    should_stop: StopCheck = lambda: False,
    preview: PreviewSettings | None = None,
) -> Finished | Cancelled | Failed:
    """Run one request to the end; every outcome is also sent to ``on_event`` as the last event."""
    preview = preview or PreviewSettings()
    started_at = time.perf_counter()
    try:
        request = resolve(request, model)
    except ValueError as error:
        failure = Failed(f"The request is not valid: {error}.")
        on_event(failure)
        return failure
    on_event(Started(request, request.steps))
    try:
        latents = denoise(model, request, on_event, should_stop, preview, started_at)
        if should_stop():
            raise CancelledError(request.steps)
        if not torch.isfinite(latents).all():
            raise GenerationError(
                "The model produced invalid numbers (NaN) during denoising; "
                "try float32 precision or a different sampler."
            )
        images = decode(model, latents)
        if not torch.isfinite(images).all():
            raise GenerationError(
                "The VAE produced an invalid (black) image even in float32; the model's VAE may be broken."
            )
        result: Finished | Cancelled | Failed = Finished(
            to_pil(images),
            request,
            metadata={
                "model_name": model.name,
                "model_hash": model.model_hash,
                "family": model.family,
                "device": model.placement.label,
                "app_version": __version__,
            },
            elapsed=time.perf_counter() - started_at,
        )
    except CancelledError as stop:
        result = Cancelled(request, int(stop.args[0]) if stop.args else 0)
    except GenerationError as error:
        result = Failed(str(error))
    except torch.OutOfMemoryError as error:
        result = Failed(f"Out of memory at {request.width}x{request.height}. {OOM_HINT}", repr(error))
    except RuntimeError as error:
        if "out of memory" in str(error).lower() or "can't allocate memory" in str(error).lower():
            result = Failed(f"Out of memory at {request.width}x{request.height}. {OOM_HINT}", repr(error))
        else:
            log.exception("generation failed")
            result = Failed(f"Generation failed: {str(error).splitlines()[0][:200]}", traceback.format_exc())
    if isinstance(result, Failed):
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    on_event(result)
    return result
