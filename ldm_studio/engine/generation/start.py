"""Where the sampling loop starts: the seed's noise, an encoded image (img2img / inpaint) or a kept step.

``Start`` says which latents enter which model call and how many real steps count as done already.
An outpainting canvas is the source extended and masked (``engine.outpaint``) before it is encoded;
hires fix's second pass (an upscaled first result, partly re-noised) builds its ``Start`` in
``engine.generation.hires``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ldm_studio.engine.errors import GenerationError
from ldm_studio.engine.generation.decode import encode
from ldm_studio.engine.generation.schedule import begin_at, call_after_step, fresh_schedule, sigma_space
from ldm_studio.engine.images import fit, mask_tensor, open_image, to_tensor
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.outpaint import Outpaint, extend
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.trajectory import Trajectory
from ldm_studio.engine.vae_tiling import tiled_vae_mode


@dataclass
class SourceImage:
    """Image-to-image / inpainting input, already fitted to the request's size and encoded."""

    latents: torch.Tensor  # scaled, repeated for the batch
    pixels: torch.Tensor  # (1, 3, H, W) in [-1, 1]
    pixel_mask: torch.Tensor | None = None  # (1, 1, H, W), 1 = repaint
    latent_mask: torch.Tensor | None = None  # (B, 1, h, w)
    masked_latents: torch.Tensor | None = None  # for 9-channel inpainting UNets

    @property
    def blended(self) -> bool:
        """Inpainting with an ordinary model: the known region is put back after every step."""
        return self.latent_mask is not None and self.masked_latents is None

    def network_input(self, halves: int) -> torch.Tensor | None:
        """The extra channels a 9-channel inpainting network reads: [mask, masked image latents]."""
        if self.masked_latents is None:
            return None
        return torch.cat([self.latent_mask, self.masked_latents], dim=1).repeat(halves, 1, 1, 1)


@dataclass
class Branch:
    """Continue ``trajectory`` from real step ``from_step`` with a (possibly changed) request."""

    trajectory: Trajectory
    from_step: int
    parent: GenerationRequest

    def same_path(self, request: GenerationRequest) -> bool:
        """Same sampler, schedule type and step count: the kept sampler state can simply be resumed."""
        return (request.sampler, request.schedule, request.steps) == (
            self.parent.sampler,
            self.parent.schedule,
            self.parent.steps,
        )


@dataclass
class Start:
    latents: torch.Tensor
    begin: int  # first model-call index into scheduler.timesteps
    done: int  # real steps already done before ``begin``


def make_generators(request: GenerationRequest) -> list[torch.Generator]:
    """One CPU generator per image (seed + i), so a seed gives the same image on any device."""
    return [torch.Generator("cpu").manual_seed(request.seed_for(i)) for i in range(request.batch_size)]


def latent_shape(model: LoadedModel, request: GenerationRequest) -> tuple[int, int, int, int]:
    factor = model.vae_scale_factor
    channels = model.pipe.vae.config.latent_channels
    return (request.batch_size, channels, request.height // factor, request.width // factor)


def initial_noise(
    model: LoadedModel, request: GenerationRequest, generators: list, dtype: torch.dtype
) -> torch.Tensor:
    from diffusers.utils.torch_utils import randn_tensor

    shape = latent_shape(model, request)
    return randn_tensor(shape, generator=generators, device=model.placement.device, dtype=dtype)


@torch.no_grad()
def prepare_source(model: LoadedModel, request: GenerationRequest) -> SourceImage | None:
    """The request's init image (and mask) fitted, encoded and repeated for the batch; None for txt2img."""
    if not request.init_image:
        return None
    size = (request.width, request.height)
    resize_mode = str(request.extras.get("resize_mode", "resize"))
    outpaint = request.outpaint
    fitted_size = outpaint.inner(size) if outpaint is not None else size
    image = fit(open_image(request.init_image), fitted_size, resize_mode)
    mask = None
    if request.mask:
        feather = float(request.extras.get("mask_feather", 0.0))
        mask = mask_tensor(open_image(request.mask, mode="L"), fitted_size, feather, resize_mode)
        if request.extras.get("mask_invert"):
            mask = 1.0 - mask
    if outpaint is not None:  # the larger canvas, its new area filled, and the seam mask (outpaint.py)
        image, seam = extend(image, outpaint, seed=request.seed or 0)
        mask = outpaint_mask(seam, outpaint, mask)
    pixels = to_tensor(image)
    latents = encode(model, pixels, tiled_vae_mode(request)).repeat(request.batch_size, 1, 1, 1)
    source = SourceImage(latents=latents, pixels=pixels)
    if mask is not None:
        source.pixel_mask = mask
        latent_size = latents.shape[-2:]
        latent_mask = F.interpolate(mask, size=latent_size, mode="bilinear", align_corners=False)
        source.latent_mask = latent_mask.repeat(request.batch_size, 1, 1, 1).to(latents.device, latents.dtype)
        if model.denoiser.takes_masked_image:
            keep = (mask < 0.5).to(pixels.dtype)
            masked = encode(model, pixels * keep, tiled_vae_mode(request)).repeat(request.batch_size, 1, 1, 1)
            source.masked_latents = masked
    return source


def outpaint_mask(seam: Image.Image, outpaint: Outpaint, painted: torch.Tensor | None) -> torch.Tensor:
    """The seam mask as a tensor, joined with a mask painted on the old image (either repaints)."""
    mask = torch.from_numpy(np.asarray(seam, dtype=np.float32) / 255.0)[None, None]
    if painted is None:
        return mask
    sides = (outpaint.left, outpaint.right, outpaint.top, outpaint.bottom)
    return torch.maximum(mask, F.pad(painted, sides, value=1.0))


def nothing_to_denoise(source: SourceImage | None, request: GenerationRequest) -> bool:
    """An img2img strength so low that no step runs: the answer is the source itself."""
    return source is not None and int(request.steps * request.strength) == 0


def schedule_for(model: LoadedModel, request: GenerationRequest, branch: Branch | None) -> Any:
    """The scheduler to run: a fresh one, or a same-path branch's sampler exactly as it was after
    that step (history, step index and all)."""
    if branch is not None and branch.same_path(request):
        kept = branch.trajectory.step(branch.from_step).scheduler
        if kept is not None:
            return copy.deepcopy(kept)
    return fresh_schedule(model, request)


def plan_start(
    scheduler: Any, request: GenerationRequest, noise: torch.Tensor, source: SourceImage | None, order: int
) -> Start:
    """Text to image from pure noise; image to image from the source noised to (1 - strength)."""
    if source is None or request.strength >= 1.0:
        return Start(noise * scheduler.init_noise_sigma, 0, 0)
    kept_steps = min(int(request.steps * request.strength), request.steps)
    return noised_start(scheduler, source.latents, noise, request.steps - kept_steps, request.steps, order)


def noised_start(
    scheduler: Any, latents: torch.Tensor, noise: torch.Tensor, skipped: int, steps: int, order: int
) -> Start:
    """Clean ``latents`` noised to where the schedule's real step ``skipped`` begins (img2img, hires
    fix's second pass); past the schedule's end they are already the answer (``done`` = ``steps``)."""
    timesteps = scheduler.timesteps
    begin = call_after_step(skipped, len(timesteps), steps, order)
    begin_at(scheduler, begin)
    if begin >= len(timesteps):
        return Start(latents.clone(), begin, steps)
    return Start(scheduler.add_noise(latents, noise, timesteps[begin : begin + 1]), begin, skipped)


def plan_branch(
    scheduler: Any, branch: Branch, request: GenerationRequest, order: int, generators: list
) -> Start:
    """Resume a kept step; the random generators are put back where they were after it."""
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
    if branch.same_path(request):
        return Start(latents, kept.next_call, kept.index)
    # Another sampler or step count: start the new schedule at the same fraction of the way, and
    # carry the latent across the two samplers' ways of scaling it.
    fraction = kept.index / branch.parent.steps
    done = min(request.steps, round(fraction * request.steps))
    begin = call_after_step(done, len(scheduler.timesteps), request.steps, order)
    begin_at(scheduler, begin)
    old_sigma = kept.sigma or 0.0
    if kept.alpha_cumprod is not None and kept.alpha_cumprod < 0:  # recorded in sigma space
        latents = latents / math.sqrt(old_sigma**2 + 1)
    if sigma_space(scheduler) and begin < len(scheduler.timesteps):
        new_sigma = float(scheduler.sigmas[begin])
        latents = latents * math.sqrt(new_sigma**2 + 1)
    return Start(latents, begin, done)
