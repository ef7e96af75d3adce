"""One generation, as the list of its stages (each in ``engine.generation``):

    conditioning -> start -> sampling loop (denoiser adapter) -> decode -> composite -> record

``generate`` owns only what spans the stages: resolving the request, the cancel checks and the
autocast region around all of them, and turning every outcome into the last event.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import torch

from ldm_studio.engine.errors import CancelledError
from ldm_studio.engine.events import Cancelled, Event, Failed, Finished, Started, Step
from ldm_studio.engine.generation.conditioning import (
    Conditioning,
    PromptSchedule,
    as_schedule,
    condition,
    encode_text,
)
from ldm_studio.engine.generation.decode import composite, decode, decode_final, to_pil
from ldm_studio.engine.generation.denoiser import classifier_free
from ldm_studio.engine.generation.hires import HiresPass
from ldm_studio.engine.generation.outcome import (
    cancellable,
    check_images,
    check_latents,
    network_blocks,
    outcome_of,
    release_memory,
)
from ldm_studio.engine.generation.record import generation_record
from ldm_studio.engine.generation.sampling import SamplingPlan, estimate_x0, sample
from ldm_studio.engine.generation.start import (
    Branch,
    SourceImage,
    initial_noise,
    make_generators,
    nothing_to_denoise,
    plan_branch,
    plan_start,
    prepare_source,
    schedule_for,
)
from ldm_studio.engine.generation.tiling import seamless
from ldm_studio.engine.hires_request import total_steps
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.networks import NetworkLibrary
from ldm_studio.engine.precision import autocast_context
from ldm_studio.engine.preview import PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.tiny_decoding import draft_record
from ldm_studio.engine.trajectory import Trajectory
from ldm_studio.engine.vae_tiling import TilingChoice, tiled_vae_mode, tiling_record

__all__ = [  # what callers import from here; the stages live in engine.generation
    "Branch",
    "Conditioning",
    "PromptSchedule",
    "decode",
    "encode_text",
    "estimate_x0",
    "generate",
    "initial_noise",
    "make_generators",
    "network_blocks",
    "resolve",
]

EventSink = Callable[[Event], None]
StopCheck = Callable[[], bool]


def resolve(request: GenerationRequest, model: LoadedModel) -> GenerationRequest:
    """A request with every choice made: a seed, a size, the model recorded."""
    request = request.with_seed()
    size = model.native_size
    return request.replace(
        width=request.width or size,
        height=request.height or size,
        model=request.model or str(model.path),
    )


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
    conditioning: Conditioning | PromptSchedule | None = None,
    metadata: dict[str, Any] | None = None,
    networks: NetworkLibrary | None = None,
) -> Finished | Cancelled | Failed:
    """Run one request to the end; every outcome is also sent to ``on_event`` as the last event.

    ``branch`` continues a kept trajectory; ``noise`` and ``conditioning`` replace the seed's noise
    and the prompt's embeddings (a latent walk's blends); ``metadata`` joins the record; ``networks``
    says where LoRA and embedding names are looked up (default: the user's folders).
    """
    preview = preview or PreviewSettings()
    started_at = time.perf_counter()
    try:
        request = resolve(request, model)
    except ValueError as error:
        failure = Failed(f"The request is not valid: {error}.")
        on_event(failure)
        return failure
    on_event(Started(request, total_steps(request.steps, request.hires)))
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
    regions.enter_context(seamless(model, request.tiling))  # A1111's Tiling; put back when it ends
    try:
        images, used = run_stages(
            model,
            request,
            relay,
            should_stop,
            preview,
            started_at,
            trajectory,
            branch,
            noise,
            conditioning,
            networks,
        )
        record = generation_record(model, request, branch, {**used, **(metadata or {})})
        result = Finished(to_pil(images), request, record, time.perf_counter() - started_at, trajectory)
        on_event(result)
        return result
    except Exception as error:  # every outcome becomes an event; nothing takes the app down
        result = outcome_of(error, request)
    finally:
        regions.close()
    if isinstance(result, Failed):
        release_memory()
    on_event(result)
    return result


def run_stages(
    model: LoadedModel,
    request: GenerationRequest,
    on_event: EventSink,
    should_stop: StopCheck,
    preview: PreviewSettings,
    started_at: float,
    trajectory: Trajectory | None,
    branch: Branch | None,
    noise: torch.Tensor | None,
    conditioning: Conditioning | PromptSchedule | None,
    networks: NetworkLibrary | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The stages in order; returns the images in [-1, 1] and the record of the LoRAs and embeddings
    used, or raises (CancelledError included)."""
    source: SourceImage | None
    if branch is None:
        source = prepare_source(model, request)
        if nothing_to_denoise(source, request):  # the answer is the source, without a VAE round trip
            return source.pixels.repeat(request.batch_size, 1, 1, 1), {}
    else:
        source = branch.trajectory.inpaint
    guided = classifier_free(model.denoiser, request.guidance)  # an LCM UNet embeds it instead
    if conditioning is None:
        prompts, prepared = condition(model, request, guided, networks)
        used = prepared.record()
    else:
        prompts, used = as_schedule(conditioning), {}
    given = None if conditioning is None else prompts  # a walk's conditioning: both passes use it
    hires = HiresPass(model, request, on_event, should_stop, preview, started_at, trajectory, networks, given)
    if hires.resumes(branch):  # a branch from a hires-fix step: the first pass is done already
        latents = hires.resume(branch)
    else:
        plan = plan_sampling(model, request, branch, source, noise, prompts, trajectory)
        latents = sample(model, plan, hires.counting(on_event), should_stop, preview, started_at, trajectory)
        if should_stop():
            raise CancelledError(request.steps)
        check_latents(latents)
        latents = hires.run(latents)  # hires fix: enlarged, then a partial second pass
    tilings: list[TilingChoice] = []  # Tiled VAE: what the final decode did, for the record
    images = decode_final(model, latents, request.decoder, tiled_vae_mode(request), tilings.append)
    used = {**used, **tiling_record(tilings), **draft_record(request, model)}
    check_images(images)
    # upscalers on their own: a pass over ``images`` here (hires fix ran above, before the decode)
    return composite(images, source), used


def plan_sampling(
    model: LoadedModel,
    request: GenerationRequest,
    branch: Branch | None,
    source: SourceImage | None,
    noise: torch.Tensor | None,
    prompts: PromptSchedule,
    trajectory: Trajectory | None,
) -> SamplingPlan:
    """The start: the sampler, the seed's noise, the first latents, with the per-step text."""
    generators = make_generators(request)
    scheduler = schedule_for(model, request, branch)
    # Always draw the seed's noise, even when a walk supplies its own: ancestral samplers then take
    # their per-step noise from the same point of each generator as a plain generation does.
    drawn = initial_noise(model, request, generators, prompts.first.embeds.dtype)
    noise = drawn if noise is None else noise.to(drawn.device, drawn.dtype)
    order = getattr(scheduler, "order", 1)
    if branch is not None:
        start = plan_branch(scheduler, branch, request, order, generators)
    else:
        start = plan_start(scheduler, request, noise, source, order)
    if trajectory is not None:
        trajectory.conditioning = prompts
        trajectory.inpaint = source
    return SamplingPlan(request, scheduler, start, prompts, generators, noise, source)
