"""One generation: text -> latents -> denoising loop with live x0 previews -> decoded images.

The loop mirrors diffusers' Stable Diffusion pipelines step for step (so a seed gives the same image
as a bare pipeline call) but keeps what they do not hand out: the x0 estimate of every step, a
cancel check between every UNet call, a count of *real* steps for samplers that call the model twice
per step, and (optionally) the whole trajectory so a generation can be replayed and branched. The
same loop serves image-to-image and inpainting: they only change where it starts and what is
blended back after each step.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ldm_studio import __version__
from ldm_studio.engine.errors import CancelledError, GenerationError
from ldm_studio.engine.events import Cancelled, Event, Failed, Finished, Started, Step
from ldm_studio.engine.images import file_sha256, fit, mask_tensor, open_image, to_tensor
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.precision import autocast_context
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
from ldm_studio.engine.trajectory import KeptStep, Trajectory

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


@dataclass
class SourceImage:
    """Image-to-image / inpainting input, already fitted to the request's size and encoded."""

    latents: torch.Tensor  # scaled, repeated for the batch
    pixels: torch.Tensor  # (1, 3, H, W) in [-1, 1]
    pixel_mask: torch.Tensor | None = None  # (1, 1, H, W), 1 = repaint
    latent_mask: torch.Tensor | None = None  # (B, 1, h, w)
    masked_latents: torch.Tensor | None = None  # for 9-channel inpainting UNets


@dataclass
class Branch:
    """Continue ``trajectory`` from real step ``from_step`` with a (possibly changed) request."""

    trajectory: Trajectory
    from_step: int
    parent: GenerationRequest


@dataclass
class Start:
    latents: torch.Tensor
    begin: int  # first model-call index into scheduler.timesteps
    done: int  # real steps already done before ``begin``


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


# Past this largest noise level a float32 sigma list cannot hold the small sigmas' squares beside it.
HUGE_SIGMA = 1e3


def check_schedule(scheduler: Any, request: GenerationRequest) -> None:
    """Refuse a Karras schedule that collapses on this model, in words, before any work is done.

    On a schedule whose last timestep has almost no signal left (the bundled model's cosine schedule
    reaches sigma ~2e4), Karras spacing puts most steps on that same last timestep, and the DPM
    solvers then step past their own list.
    """
    if not scheduler.config.get("use_karras_sigmas"):
        return
    timesteps = scheduler.timesteps.tolist()
    if len(set(timesteps)) < len(timesteps):
        raise GenerationError(
            f"{request.sampler} does not work with this model's noise schedule: its Karras spacing "
            f"puts several of the {request.steps} steps on the same timestep. Choose DPM++ 2M or Euler a."
        )


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


def first_line(error: BaseException) -> str:
    lines = str(error).splitlines()
    return lines[0][:200] if lines else type(error).__name__


def sigma_space(scheduler: Any) -> bool:
    """Whether the sampler holds latents as x0 + sigma * noise (Euler family) rather than VP form."""
    return float(scheduler.init_noise_sigma) > 1.0


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


def expand(conditioning: Conditioning, batch: int, guided: bool, size: tuple[int, int], model: LoadedModel):
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


def make_generators(request: GenerationRequest) -> list[torch.Generator]:
    """One CPU generator per image (seed + i), so a seed gives the same image on any device."""
    return [torch.Generator("cpu").manual_seed(request.seed_for(i)) for i in range(request.batch_size)]


def latent_shape(model: LoadedModel, request: GenerationRequest) -> tuple[int, int, int, int]:
    factor = model.vae_scale_factor
    channels = model.pipe.vae.config.latent_channels
    return (request.batch_size, channels, request.height // factor, request.width // factor)


def initial_noise(model: LoadedModel, request: GenerationRequest, generators: list, dtype: torch.dtype):
    from diffusers.utils.torch_utils import randn_tensor

    shape = latent_shape(model, request)
    return randn_tensor(shape, generator=generators, device=model.placement.device, dtype=dtype)


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


def estimate_x0(
    scheduler: Any, output: Any, model_output: torch.Tensor, sample: torch.Tensor, t: Any
) -> torch.Tensor:
    x0 = getattr(output, "pred_original_sample", None)
    if x0 is None:
        x0 = getattr(output, "denoised", None)
    if x0 is not None:
        return x0
    alpha_cumprod = float(scheduler.alphas_cumprod[int(round(float(t)))])
    return x0_from_model_output(model_output, sample, alpha_cumprod, scheduler.config.prediction_type)


def noise_level(scheduler: Any, timesteps: torch.Tensor, next_call: int) -> float:
    """VP-equivalent sigma of the latents about to enter model call ``next_call`` (0 at the end)."""
    if next_call >= len(timesteps):
        return 0.0
    if sigma_space(scheduler) and getattr(scheduler, "step_index", None) is not None:
        return float(scheduler.sigmas[scheduler.step_index])
    alpha = float(scheduler.alphas_cumprod[int(round(float(timesteps[next_call])))])
    return math.sqrt((1 - alpha) / alpha)


@torch.no_grad()
def decode(model: LoadedModel, latents: torch.Tensor) -> torch.Tensor:
    """Latents (as the UNet sees them) -> images in [-1, 1]; retried in fp32 once if half precision fails."""
    vae = model.pipe.vae
    scaling = float(vae.config.scaling_factor or 1.0)
    shift = float(getattr(vae.config, "shift_factor", 0.0) or 0.0)
    raw = latents / scaling + shift
    vae_dtype = next(vae.parameters()).dtype
    images = vae.decode(raw.to(vae_dtype), return_dict=False)[0]
    autocast = torch.is_autocast_enabled(raw.device.type)
    if torch.isfinite(images).all() or (vae_dtype == torch.float32 and not autocast):
        return images
    log.warning("VAE decode gave non-finite pixels in %s; retrying in float32", images.dtype)
    vae.to(torch.float32)
    try:
        with torch.autocast(raw.device.type, enabled=False):
            return vae.decode(raw.float(), return_dict=False)[0]
    finally:
        vae.to(vae_dtype)


@torch.no_grad()
def encode(model: LoadedModel, pixels: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> latents as the UNet sees them (the distribution's mean: deterministic)."""
    vae = model.pipe.vae
    parameter = next(vae.parameters())
    raw = vae.encode(pixels.to(parameter.device, parameter.dtype)).latent_dist.mean
    scaling = float(vae.config.scaling_factor or 1.0)
    shift = float(getattr(vae.config, "shift_factor", 0.0) or 0.0)
    return (raw - shift) * scaling


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


@torch.no_grad()
def prepare_source(model: LoadedModel, request: GenerationRequest) -> SourceImage | None:
    if not request.init_image:
        return None
    size = (request.width, request.height)
    resize_mode = str(request.extras.get("resize_mode", "resize"))
    image = fit(open_image(request.init_image), size, resize_mode)
    pixels = to_tensor(image)
    latents = encode(model, pixels).repeat(request.batch_size, 1, 1, 1)
    source = SourceImage(latents=latents, pixels=pixels)
    if request.mask:
        feather = float(request.extras.get("mask_feather", 0.0))
        mask = mask_tensor(open_image(request.mask, mode="L"), size, feather, resize_mode)
        if request.extras.get("mask_invert"):
            mask = 1.0 - mask
        source.pixel_mask = mask
        latent_size = latents.shape[-2:]
        latent_mask = F.interpolate(mask, size=latent_size, mode="bilinear", align_corners=False)
        source.latent_mask = latent_mask.repeat(request.batch_size, 1, 1, 1).to(latents.device, latents.dtype)
        if model.pipe.unet.config.in_channels == 9:
            keep = (mask < 0.5).to(pixels.dtype)
            masked = encode(model, pixels * keep).repeat(request.batch_size, 1, 1, 1)
            source.masked_latents = masked
    return source


def source_record(request: GenerationRequest) -> dict[str, Any]:
    """Where an image-to-image result came from, for its metadata."""
    record: dict[str, Any] = {}
    for key in ("init_image", "mask"):
        path = getattr(request, key)
        if path:
            record[f"{key}_path"] = str(path)
            try:
                record[f"{key}_sha256"] = file_sha256(path)
            except OSError:
                pass
    if request.init_image:
        record["strength"] = request.strength
    return record


def plan_start(
    scheduler: Any,
    request: GenerationRequest,
    noise: torch.Tensor,
    source: SourceImage | None,
    order: int,
) -> Start:
    timesteps = scheduler.timesteps
    if source is None or request.strength >= 1.0:
        return Start(noise * scheduler.init_noise_sigma, 0, 0)
    # Image to image: skip the first (1 - strength) of the schedule and noise the image to that level.
    kept_steps = min(int(request.steps * request.strength), request.steps)
    skipped = request.steps - kept_steps
    begin = call_after_step(skipped, len(timesteps), request.steps, order)
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    if begin >= len(timesteps):
        return Start(source.latents.clone(), begin, request.steps)
    latents = scheduler.add_noise(source.latents, noise, timesteps[begin : begin + 1])
    return Start(latents, begin, skipped)


def plan_branch(
    scheduler: Any, branch: Branch, request: GenerationRequest, order: int, generators: list
) -> Start:
    kept = branch.trajectory.step(branch.from_step)
    if not kept.branchable:
        raise GenerationError(
            f"Step {branch.from_step} was not kept in memory (the trajectory bound was reached); "
            "branch from an earlier step."
        )
    if kept.generator_states is not None and len(kept.generator_states) == len(generators):
        for generator, state in zip(generators, kept.generator_states, strict=True):
            generator.set_state(state)
    latents = kept.latents.clone()
    same_path = request.sampler == branch.parent.sampler and request.steps == branch.parent.steps
    if same_path:
        return Start(latents, kept.next_call, kept.index)
    # Another sampler or step count: start the new schedule at the same fraction of the way, and
    # carry the latent across the two samplers' ways of scaling it.
    fraction = kept.index / branch.parent.steps
    done = min(request.steps, round(fraction * request.steps))
    begin = call_after_step(done, len(scheduler.timesteps), request.steps, order)
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    old_sigma = kept.sigma or 0.0
    if kept.alpha_cumprod is not None and kept.alpha_cumprod < 0:  # recorded in sigma space
        latents = latents / math.sqrt(old_sigma**2 + 1)
    if sigma_space(scheduler) and begin < len(scheduler.timesteps):
        new_sigma = float(scheduler.sigmas[begin])
        latents = latents * math.sqrt(new_sigma**2 + 1)
    return Start(latents, begin, done)


@torch.no_grad()
def denoise(
    model: LoadedModel,
    request: GenerationRequest,
    on_event: EventSink,
    should_stop: StopCheck,
    preview: PreviewSettings,
    started_at: float,
    *,
    trajectory: Trajectory | None = None,
    branch: Branch | None = None,
    noise: torch.Tensor | None = None,
    conditioning: Conditioning | None = None,
    source: SourceImage | None = None,
) -> torch.Tensor:
    """The reverse diffusion in latent space; returns the final latents or raises CancelledError."""
    pipe, device = model.pipe, model.placement.device
    guided = request.guidance > 1.0
    size = (request.height, request.width)
    generators = make_generators(request)

    scheduler = scheduler_for(model, request.sampler)
    same_path = branch is not None and (request.sampler, request.steps) == (
        branch.parent.sampler,
        branch.parent.steps,
    )
    if same_path and branch.trajectory.step(branch.from_step).scheduler is not None:
        # The sampler exactly as it was after that step: history, step index and all.
        scheduler = copy.deepcopy(branch.trajectory.step(branch.from_step).scheduler)
    else:
        scheduler.set_timesteps(request.steps, device=device)
        check_schedule(scheduler, request)
        keep_small_sigmas_exact(scheduler)
    pipe.scheduler = scheduler  # so the pipeline helpers below see the sampler in use
    timesteps = scheduler.timesteps
    order = getattr(scheduler, "order", 1)

    if conditioning is None:
        with torch.autocast(device.type, enabled=False):  # once per prompt: keep the text in full precision
            conditioning = encode_text(model, request.prompt, request.negative_prompt, guided)
    embeds, added = expand(conditioning, request.batch_size, guided, size, model)
    if trajectory is not None:
        trajectory.conditioning = conditioning
    # Always draw the seed's noise, even when a walk supplies its own: ancestral samplers then take
    # their per-step noise from the same point of each generator as a plain generation does.
    drawn = initial_noise(model, request, generators, embeds.dtype)
    noise = drawn if noise is None else noise.to(drawn.device, drawn.dtype)
    if branch is not None:
        start = plan_branch(scheduler, branch, request, order, generators)
        source = branch.trajectory.inpaint if source is None else source
    else:
        start = plan_start(scheduler, request, noise, source, order)
    if trajectory is not None:
        trajectory.inpaint = source
    latents = start.latents.to(device, embeds.dtype)
    step_kwargs = pipe.prepare_extra_step_kwargs(generators, 0.0)
    blend = source is not None and source.latent_mask is not None and source.masked_latents is None

    done = start.done
    for index in range(start.begin, len(timesteps)):
        t = timesteps[index]
        if should_stop():
            raise CancelledError(done)
        model_input = torch.cat([latents] * 2) if guided else latents
        model_input = scheduler.scale_model_input(model_input, t)
        if source is not None and source.masked_latents is not None:
            halves = 2 if guided else 1
            extra = torch.cat([source.latent_mask, source.masked_latents], dim=1).repeat(halves, 1, 1, 1)
            model_input = torch.cat([model_input, extra.to(model_input.dtype)], dim=1)
        prediction = pipe.unet(
            model_input, t, encoder_hidden_states=embeds, added_cond_kwargs=added, return_dict=False
        )[0].to(latents.dtype)  # bf16 under autocast: guidance and the sampler work in the latents' dtype
        if guided:
            unconditional, conditional = prediction.chunk(2)
            prediction = unconditional + request.guidance * (conditional - unconditional)
        sample = latents
        output = scheduler.step(prediction, t, latents, **step_kwargs, return_dict=True)
        latents = output.prev_sample
        if blend:
            # Ordinary models inpaint by putting the known region back, noised to the next level.
            known = source.latents
            if index + 1 < len(timesteps):
                known = scheduler.add_noise(source.latents, noise, timesteps[index + 1 : index + 2])
            latents = source.latent_mask * latents + (1 - source.latent_mask) * known
        if not real_step_done(index, len(timesteps), request.steps, order):
            continue
        done += 1
        x0 = estimate_x0(scheduler, output, prediction, sample, t)
        if source is not None and source.latent_mask is not None:
            x0 = source.latent_mask * x0 + (1 - source.latent_mask) * source.latents
        sigmas = getattr(scheduler, "sigmas", None)
        sigma = None
        if sigmas is not None and getattr(scheduler, "step_index", None) is not None:
            sigma = float(sigmas[min(scheduler.step_index, len(sigmas) - 1)])
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
            trajectory.record(kept, latents, x0, scheduler, generators)
        on_event(Step(done, request.steps, elapsed, float(t), sigma, image, noisy))
    return latents


def network_blocks(model: LoadedModel) -> list[torch.nn.Module]:
    """The UNet's and the VAE decoder's top-level blocks: cancel points a fraction of a step apart."""
    blocks: list[torch.nn.Module] = []
    for network in (model.pipe.unet, model.pipe.vae.decoder):
        for name in ("down_blocks", "mid_block", "up_blocks"):
            part = getattr(network, name, None)
            if isinstance(part, torch.nn.ModuleList):
                blocks.extend(part)
            elif isinstance(part, torch.nn.Module):
                blocks.append(part)
    return blocks


@contextlib.contextmanager
def cancellable(blocks: list[torch.nn.Module], should_stop: StopCheck, steps_done: Callable[[], int]):
    """Check for a cancel before every block too, not only between steps.

    One SD 1.5 step or VAE decode on a CPU takes 4-20 s: longer than the window waits for the
    worker when it closes, and far too long for Cancel to feel like it works.
    """

    def check(_block: torch.nn.Module, _inputs: Any) -> None:
        if should_stop():
            raise CancelledError(steps_done())

    handles = [block.register_forward_pre_hook(check) for block in blocks]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def composite(images: torch.Tensor, source: SourceImage | None) -> torch.Tensor:
    """Keep the source's own pixels outside the (feathered) mask: no VAE round-trip drift there."""
    if source is None or source.pixel_mask is None:
        return images
    mask = source.pixel_mask.to(images.device, images.dtype)
    return mask * images + (1 - mask) * source.pixels.to(images.device, images.dtype)


def generate(
    model: LoadedModel,
    request: GenerationRequest,
    on_event: EventSink = lambda event: None,
    should_stop: StopCheck = lambda: False,
    preview: PreviewSettings | None = None,
    *,
    keep_trajectory: bool = False,
    branch: Branch | None = None,
    noise: torch.Tensor | None = None,
    conditioning: Conditioning | None = None,
    metadata: dict[str, Any] | None = None,
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
    trajectory = Trajectory() if keep_trajectory or branch is not None else None
    if trajectory is not None and branch is not None:
        trajectory.steps = list(branch.trajectory.steps[: branch.from_step])
    reported = [0]

    def relay(event: Event) -> None:
        if isinstance(event, Step):
            reported[0] = event.index
        on_event(event)

    regions = contextlib.ExitStack()
    regions.enter_context(cancellable(network_blocks(model), should_stop, lambda: reported[0]))
    # One autocast region for the whole generation: its bf16 copies of the weights are made once.
    regions.enter_context(autocast_context(model.placement.device, model.dtype_choice))
    try:
        source = prepare_source(model, request) if branch is None else None
        if source is not None and int(request.steps * request.strength) == 0:
            # Nothing to denoise: the answer is the source itself, without a VAE round trip.
            images = source.pixels.repeat(request.batch_size, 1, 1, 1)
            return _finish(model, request, images, on_event, started_at, trajectory, branch, metadata)
        latents = denoise(
            model,
            request,
            relay,
            should_stop,
            preview,
            started_at,
            trajectory=trajectory,
            branch=branch,
            noise=noise,
            conditioning=conditioning,
            source=source,
        )
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
        if branch is not None and source is None:
            source = trajectory.inpaint
        images = composite(images, source)
        return _finish(model, request, images, on_event, started_at, trajectory, branch, metadata)
    except CancelledError as stop:
        result = Cancelled(request, int(stop.args[0]) if stop.args else 0)
    except GenerationError as error:
        result = Failed(str(error), traceback.format_exc())
    except torch.OutOfMemoryError:
        message = f"Out of memory at {request.width}x{request.height}. {OOM_HINT}"
        result = Failed(message, traceback.format_exc())
    except RuntimeError as error:
        if "out of memory" in str(error).lower() or "can't allocate memory" in str(error).lower():
            message = f"Out of memory at {request.width}x{request.height}. {OOM_HINT}"
            result = Failed(message, traceback.format_exc())
        else:
            log.exception("generation failed")
            result = Failed(f"Generation failed: {first_line(error)}", traceback.format_exc())
    except Exception as error:  # a fault in a library or in us must not take the app down with it
        log.exception("generation failed")
        message = f"Generation failed ({type(error).__name__}): {first_line(error)}"
        result = Failed(message, traceback.format_exc())
    finally:
        regions.close()
    if isinstance(result, Failed):
        # free what the failed step held (an out-of-memory above all); a full collection holds
        # the GIL for a few hundred ms, so a plain cancel does without it
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    on_event(result)
    return result


def _finish(
    model: LoadedModel,
    request: GenerationRequest,
    images: torch.Tensor,
    on_event: EventSink,
    started_at: float,
    trajectory: Trajectory | None,
    branch: Branch | None,
    metadata: dict[str, Any] | None,
) -> Finished:
    record = {
        "model_name": model.name,
        "model_hash": model.model_hash,
        "family": model.family,
        "device": model.placement.label,
        "app_version": __version__,
        **source_record(request),
        **(metadata or {}),
    }
    if branch is not None:
        record.update(parent_seed=branch.parent.seed, branch_step=branch.from_step)
    result = Finished(to_pil(images), request, record, time.perf_counter() - started_at, trajectory)
    on_event(result)
    return result
