"""Hires fix: the first result enlarged (in latent space or in pixels), then a partial second pass.

The second pass is one more ``Start`` for the one sampling loop: the enlarged latents noised to the
level where A1111's shortened schedule begins (``HiresFix.schedule_steps`` long, of which the last
``pass_steps`` run). Its ``Step`` events carry on the first pass's numbering (step 21 of 30 is the
second pass's first), and its kept steps follow the first pass's in the trajectory, with a
``PassRecord`` that says which size, schedule and text they belong to, so a branch from any of them
resumes the second pass without running the first again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ldm_studio.engine.errors import CancelledError, GenerationError, ModelLoadError
from ldm_studio.engine.events import Event, Step
from ldm_studio.engine.generation.conditioning import PromptSchedule, condition
from ldm_studio.engine.generation.decode import decode, encode, to_pil
from ldm_studio.engine.generation.denoiser import classifier_free
from ldm_studio.engine.generation.outcome import check_images, check_latents
from ldm_studio.engine.generation.sampling import SamplingPlan, sample
from ldm_studio.engine.generation.schedule import fresh_schedule
from ldm_studio.engine.generation.start import (
    Branch,
    initial_noise,
    make_generators,
    noised_start,
    plan_branch,
    schedule_for,
)
from ldm_studio.engine.hires_request import LATENT_FACTOR, HiresFix, total_steps
from ldm_studio.engine.images import to_tensor
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.networks import NetworkLibrary
from ldm_studio.engine.preview import PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.trajectory import Trajectory
from ldm_studio.engine.vae_tiling import tiled_vae_mode

EventSink = Callable[[Event], None]
StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class PassRecord:
    """The second pass as it ran: kept on the trajectory for branches from its steps."""

    first_steps: int  # steps of the first pass: the second pass's steps are numbered after them
    request: GenerationRequest  # the pass as a request of its own: its size, schedule, sampler, CFG
    skipped: int  # schedule steps before the pass's first step
    hires: HiresFix


def pass_request(request: GenerationRequest, hires: HiresFix, size: tuple[int, int]) -> GenerationRequest:
    """The second pass as an image-to-image request at ``size`` (width, height in pixels)."""
    return request.replace(
        width=size[0],
        height=size[1],
        steps=max(1, hires.schedule_steps(request.steps)),
        strength=hires.strength,
        sampler=hires.sampler or request.sampler,
        schedule=hires.pass_schedule(request.sampler, request.schedule),
        guidance=request.guidance if hires.guidance is None else hires.guidance,
        prompt=hires.prompt or request.prompt,
        negative_prompt=hires.negative_prompt or request.negative_prompt,
        hires=None,
    )


def upscale_latents(latents: torch.Tensor, size: tuple[int, int], mode: tuple[str, bool]) -> torch.Tensor:
    """A1111's latent upscale: torch's interpolate to (height, width) latents, in float32."""
    interpolate_mode, antialias = mode
    scaled = F.interpolate(latents.float(), size=size, mode=interpolate_mode, antialias=antialias)
    return scaled.to(latents.dtype)


def truncate(latents: torch.Tensor, cut_w: int, cut_h: int) -> torch.Tensor:
    """A1111's centred crop of ``Hires resize`` overflow (odd cuts lose the extra row at the end)."""
    height, width = latents.shape[-2:]
    return latents[:, :, cut_h // 2 : height - (cut_h + 1) // 2, cut_w // 2 : width - (cut_w + 1) // 2]


@dataclass
class HiresPass:
    """The hires-fix stage of one generation (does nothing when the request has no ``hires``)."""

    model: LoadedModel
    request: GenerationRequest
    on_event: EventSink
    should_stop: StopCheck
    preview: PreviewSettings
    started_at: float
    trajectory: Trajectory | None
    networks: NetworkLibrary | None = None
    given: PromptSchedule | None = None  # a caller's conditioning (latent walk): both passes use it

    # ---- the first pass's events -----------------------------------------------------------------
    def counting(self, on_event: EventSink) -> EventSink:
        """The first pass's events with the whole generation's step total."""
        total = total_steps(self.request.steps, self.request.hires)
        if total == self.request.steps:
            return on_event

        def relay(event: Event) -> None:
            on_event(dataclasses.replace(event, total=total) if isinstance(event, Step) else event)

        return relay

    # ---- after the first pass --------------------------------------------------------------------
    @torch.no_grad()
    def run(self, latents: torch.Tensor) -> torch.Tensor:
        """The first pass's final latents -> the second pass's (or them unchanged without hires)."""
        hires = self.request.hires
        if hires is None:
            return latents
        first = self.request.steps
        if self.should_stop():
            raise CancelledError(first)
        factor = self.model.vae_scale_factor
        width, height = self.request.width, self.request.height
        up_w, up_h = hires.upscale_to(width, height)
        # A1111 floors to its latent units of 8 pixels; other VAE factors keep those pixel sizes
        lat_w, lat_h = (side // LATENT_FACTOR * LATENT_FACTOR // factor for side in (up_w, up_h))
        if hires.latent_mode is not None:
            enlarged = upscale_latents(latents, (lat_h, lat_w), hires.latent_mode)
        else:
            enlarged = self._upscale_pixels(latents, (up_w, up_h))[:, :, :lat_h, :lat_w]
        cut_w, cut_h = (cut * LATENT_FACTOR // factor for cut in hires.truncation(width, height))
        enlarged = truncate(enlarged, cut_w, cut_h)
        if hires.strength <= 0:  # nothing to denoise: the enlargement is the answer
            return enlarged
        size = (enlarged.shape[-1] * factor, enlarged.shape[-2] * factor)
        second = pass_request(self.request, hires, size)
        steps = hires.pass_steps(first)
        skipped = second.steps - steps
        generators = make_generators(second)  # fresh from the seed, as A1111's second pass draws
        scheduler = fresh_schedule(self.model, second)
        prompts = self._prompts(second, steps, skipped)
        noise = initial_noise(self.model, second, generators, prompts.first.embeds.dtype)
        order = getattr(scheduler, "order", 1)
        start = noised_start(scheduler, enlarged.to(noise.dtype), noise, skipped, second.steps, order)
        if start.begin >= len(scheduler.timesteps):
            return enlarged
        plan = SamplingPlan(second, scheduler, start, prompts, generators, noise)
        return self._sample(plan, PassRecord(first, second, skipped, hires))

    def _upscale_pixels(self, latents: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Decode, enlarge every image with a pixel upscaler to exactly ``size``, encode again."""
        from ldm_studio.engine.upscalers import LANCZOS, PixelResize, find_upscaler, upscale

        hires = self.request.hires
        tiling = tiled_vae_mode(self.request)  # the user's Tiled VAE choice holds for both passes
        images = decode(self.model, latents, tiling)
        check_images(images)
        try:
            upscaler = find_upscaler(hires.upscaler, device=self.model.placement.device.type)
        except ModelLoadError as error:
            raise GenerationError(f"Hires fix: {error}.") from error
        enlarged = []
        for image in to_pil(images):
            if isinstance(upscaler, PixelResize):
                result = upscaler.resize(image, size)
            else:  # A1111's resize_image: the network by the larger ratio, then Lanczos to the size
                ratio = max(size[0] / image.width, size[1] / image.height)
                try:
                    result = upscale(image, upscaler, ratio, should_stop=self.should_stop)
                except CancelledError as error:
                    raise CancelledError(self.request.steps) from error
                if result.size != size:
                    result = LANCZOS.resize(result, size)
            enlarged.append(to_tensor(result))
        return encode(self.model, torch.cat(enlarged), tiling)

    def _prompts(self, second: GenerationRequest, steps: int, skipped: int) -> PromptSchedule:
        """The second pass's text, read over its own steps (A1111's hr conds) and shifted past the
        schedule steps it skips, as the loop asks by schedule step."""
        if self.given is not None:
            schedule = self.given
        else:
            guided = classifier_free(self.model.denoiser, second.guidance)
            schedule, _ = condition(self.model, second.replace(steps=steps), guided, self.networks)
        return PromptSchedule(
            tuple((until + skipped, conditioning) for until, conditioning in schedule.parts)
        )

    def _sample(self, plan: SamplingPlan, record: PassRecord) -> torch.Tensor:
        if self.trajectory is not None:
            self.trajectory.second_pass = record
        total = record.first_steps + record.hires.pass_steps(record.first_steps)
        offset = record.first_steps - record.skipped

        def relay(event: Event) -> None:
            if isinstance(event, Step):
                event = dataclasses.replace(event, index=event.index + offset, total=total)
            self.on_event(event)

        try:
            latents = sample(
                self.model, plan, relay, self.should_stop, self.preview, self.started_at, self.trajectory
            )
        except CancelledError as error:  # the loop counts schedule steps: say it in the user's numbers
            done = int(error.args[0]) if error.args else record.skipped
            raise CancelledError(max(record.first_steps, done + offset)) from error
        if self.should_stop():
            raise CancelledError(total)
        check_latents(latents)
        return latents

    # ---- a branch from a second-pass step ----------------------------------------------------------
    def resumes(self, branch: Branch | None) -> bool:
        """Whether ``branch`` starts inside a second pass (then the first pass is not run again)."""
        record = None if branch is None else second_pass_record(branch.trajectory)
        return record is not None and branch.from_step > record.first_steps

    @torch.no_grad()
    def resume(self, branch: Branch) -> torch.Tensor:
        """Continue the parent's second pass from the kept step, with this request's hires settings
        (same sampler and schedule: exactly where it was; others: at the same noise level)."""
        record: PassRecord = branch.trajectory.second_pass
        hires = self.request.hires or record.hires
        first = record.first_steps
        size = (record.request.width, record.request.height)
        second = pass_request(self.request.replace(steps=first), hires, size)
        steps = hires.pass_steps(first)
        skipped = max(0, second.steps - steps)
        old = Branch(branch.trajectory, branch.from_step, record.request)
        scheduler = schedule_for(self.model, second, old)
        generators = make_generators(second)
        order = getattr(scheduler, "order", 1)
        start = plan_branch(scheduler, old, second, order, generators)
        if self.trajectory is not None:
            self.trajectory.conditioning = branch.trajectory.conditioning
        prompts = self._prompts(second, steps, skipped)
        noise = torch.zeros_like(start.latents)  # only inpainting reads the plan's noise
        plan = SamplingPlan(second, scheduler, start, prompts, generators, noise)
        return self._sample(plan, PassRecord(first, second, skipped, hires))


def second_pass_record(trajectory: Trajectory) -> PassRecord | None:
    """The second pass a kept trajectory went through, if any."""
    record = trajectory.second_pass
    return record if isinstance(record, PassRecord) else None
