"""Latent walks: interpolate the starting noise between two seeds and/or the text between two prompts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

from ldm_studio.engine.errors import CancelledError, GenerationError
from ldm_studio.engine.events import Cancelled, Failed
from ldm_studio.engine.generate import generate, resolve
from ldm_studio.engine.generation.conditioning import Conditioning, encode_text
from ldm_studio.engine.generation.denoiser import classifier_free
from ldm_studio.engine.generation.start import initial_noise, make_generators
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.preview import PreviewSettings
from ldm_studio.engine.request import GenerationRequest


@dataclass(frozen=True)
class WalkRequest:
    start: GenerationRequest  # prompt, seed, sampler, steps, guidance, size (batch of 1)
    to_seed: int
    to_prompt: str = ""  # empty: keep the start prompt
    frames: int = 16


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation, which keeps Gaussian noise at the norm the sampler expects.

    Returns ``a`` and ``b`` themselves at t = 0 and 1, so a walk's ends are the plain images.
    """
    if t <= 0:
        return a
    if t >= 1:
        return b
    flat_a, flat_b = a.flatten().double(), b.flatten().double()
    cosine = torch.dot(flat_a, flat_b) / (flat_a.norm() * flat_b.norm())
    omega = torch.arccos(cosine.clamp(-1, 1))
    if omega.abs() < 1e-6:
        return torch.lerp(a, b, t)
    sine = torch.sin(omega)
    mixed = (torch.sin((1 - t) * omega) / sine) * a.double() + (torch.sin(t * omega) / sine) * b.double()
    return mixed.to(a.dtype)


def lerp_conditioning(a: Conditioning, b: Conditioning, t: float) -> Conditioning:
    if t <= 0:
        return a
    if t >= 1:
        return b
    added = None
    if a.added is not None and b.added is not None:
        added = {key: torch.lerp(a.added[key], b.added[key], t) for key in a.added}
    return Conditioning(torch.lerp(a.embeds, b.embeds, t), added)


def walk(
    model: LoadedModel,
    walk_request: WalkRequest,
    on_frame: Callable[[int, int, Image.Image], None] = lambda index, total, image: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[Image.Image]:
    """Generate the walk's frames in order; raises CancelledError or GenerationError."""
    if walk_request.frames < 2:
        raise GenerationError("A walk needs at least 2 frames.")
    start = resolve(walk_request.start.replace(batch_size=1), model)
    end = start.replace(seed=walk_request.to_seed, prompt=walk_request.to_prompt or start.prompt)
    guided = classifier_free(model.denoiser, start.guidance)  # as generate() decides it
    text_a = encode_text(model, start.prompt, start.negative_prompt, guided)
    text_b = encode_text(model, end.prompt, end.negative_prompt, guided)
    dtype = text_a.embeds.dtype  # the dtype generate() draws its own noise in
    noise_a = initial_noise(model, start, make_generators(start), dtype)
    noise_b = initial_noise(model, end, make_generators(end), dtype)

    frames = []
    total = walk_request.frames
    for index in range(total):
        if should_stop():
            raise CancelledError(index)
        t = index / (total - 1)
        # the ancestral samplers' per-step noise comes from the nearer end's generator
        frame_request = start if t < 0.5 else end
        result = generate(
            model,
            frame_request,
            preview=PreviewSettings("off"),
            should_stop=should_stop,
            noise=slerp(noise_a, noise_b, t),
            conditioning=lerp_conditioning(text_a, text_b, t),
        )
        if isinstance(result, Cancelled):
            raise CancelledError(index)
        if isinstance(result, Failed):
            raise GenerationError(result.message)
        frames.append(result.images[0])
        on_frame(index + 1, total, result.images[0])
    return frames
