"""The request being edited, and the pure steps that turn it into the request a job runs.

Every change to a request between the prompt box and the worker happens here: the seed drawn or
checked, the model recorded, the size left to a model still loading, a branch's fixed latent, an
image's settings reused. The session calls these; nothing else edits a request.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field, replace

from ldm_studio.app.network_resolution import NetworkResolution
from ldm_studio.engine.distilled import FewStepPreset
from ldm_studio.engine.preview_settings import PreviewSettings
from ldm_studio.engine.request import MAX_CLIP_SKIP, MAX_SEED, GenerationRequest
from ldm_studio.gallery.metadata import ImageMetadata

log = logging.getLogger(__name__)

REUSE_MODES = ("all", "prompt", "seed")
REUSED_WHAT = {"all": "settings", "prompt": "prompt", "seed": "seed"}
MADE_BY = {"a1111": "an A1111", "comfyui": "a ComfyUI", "invokeai": "an InvokeAI"}


@dataclass(frozen=True)
class Draft:
    """The request as typed: the prompt may be empty and the seed not yet valid."""

    request: GenerationRequest = field(default_factory=lambda: GenerationRequest(""))
    typed_seed: int | None = None  # what the seed box says; used unless ``random_seed``
    random_seed: bool = True
    native_size: bool = False  # the size follows the model (matters while a model is still loading)


def job_request(
    draft: Draft, model_path: str, *, size_unknown: bool = False, rng: random.Random | None = None
) -> GenerationRequest:
    """The draft made ready to run for ``model_path``; raises ValueError with a sentence for the user.

    ``size_unknown``: the model is still loading, so a native size is left for the engine to fill.
    """
    request = draft.request
    if not request.prompt.strip():
        raise ValueError("Type a prompt first.")
    if draft.random_seed:
        seed = (rng or random.SystemRandom()).randint(0, MAX_SEED)
    elif draft.typed_seed is None:
        raise ValueError("Type a seed, or tick Random.")
    elif not 0 <= draft.typed_seed <= MAX_SEED:
        raise ValueError(f"The seed must be at most {MAX_SEED}.")
    else:
        seed = draft.typed_seed
    request = request.replace(
        prompt=request.prompt.strip(),
        negative_prompt=request.negative_prompt.strip(),
        seed=seed,
        model=model_path,
    )
    if size_unknown and draft.native_size:
        request = request.replace(width=None, height=None)
    return request


def branched(request: GenerationRequest, parent: GenerationRequest) -> GenerationRequest:
    """A branch continues ``parent``'s latent: its seed, size and batch are fixed; the rest may change."""
    return request.replace(
        seed=parent.seed, width=parent.width, height=parent.height, batch_size=parent.batch_size
    )


def reused(draft: Draft, metadata: ImageMetadata, mode: str) -> Draft:
    """The draft with an image's settings: all of them, the prompt only or the seed only."""
    request = metadata.reuse(draft.request, mode)
    if mode in ("all", "seed") and request.seed is not None:
        return Draft(request, request.seed, False, draft.native_size)
    return Draft(request, draft.typed_seed, draft.random_seed, draft.native_size)


def reuse_note(metadata: ImageMetadata, mode: str) -> str:
    """'Reused the prompt of an A1111 image': what the status bar says after a reuse."""
    return f"Reused the {REUSED_WHAT.get(mode, mode)} of {MADE_BY.get(metadata.source or '', 'the')} image"


def with_model_defaults(draft: Draft, model_settings: dict, preset: FewStepPreset | None = None) -> Draft:
    """The draft with the defaults the user set for the model that just loaded (its clip skip), and
    a few-step model's preset (sampler, schedule, steps, CFG, size: see ``engine.distilled``).

    A model without a default leaves the draft alone: a clip skip reused from an image survives
    loading the model that made it.
    """
    if preset is not None and not preset.matches(draft.request):
        native = draft.native_size and not preset.size  # a Turbo model's 512² replaces "Native"
        draft = replace(draft, request=preset.applied(draft.request), native_size=native)
    clip_skip = model_settings.get("clip_skip")
    if not isinstance(clip_skip, int) or not 1 <= clip_skip <= MAX_CLIP_SKIP:
        return draft
    if clip_skip == draft.request.clip_skip:
        return draft
    return replace(draft, request=draft.request.replace(clip_skip=clip_skip))


def with_resolved_networks(draft: Draft, resolution: NetworkResolution) -> Draft | None:
    """The draft with the LoRAs / embeddings a reuse found under other names; None when nothing changes
    or when the prompts were edited since the reuse (the user's typing wins)."""
    request = draft.request
    if (request.prompt, request.negative_prompt) != resolution.source or not resolution.renamed:
        return None
    request = request.replace(prompt=resolution.prompt, negative_prompt=resolution.negative_prompt)
    return replace(draft, request=request)


def with_seed(draft: Draft, seed: int) -> Draft:
    """The draft with ``seed`` fixed (Random off): to vary the other settings of one image."""
    return Draft(draft.request.replace(seed=seed), seed, False, draft.native_size)


def restored(last_request: dict, random_seed: bool) -> Draft:
    """The draft saved by the last run; one it cannot read gives the default draft (and a log line)."""
    request = GenerationRequest("")
    if last_request:
        try:
            request = GenerationRequest.from_dict(last_request)
        except (TypeError, ValueError) as error:
            log.warning("ignoring the saved request: %s", error)
    return Draft(request, request.seed, random_seed)


def with_image_options(request: GenerationRequest, tiling: bool, tiled_vae: str) -> GenerationRequest:
    """The request with seamless Tiling and the Tiled VAE setting (kept in extras; "auto" is left out)."""
    from ldm_studio.engine.vae_tiling import TILED_VAE_KEY

    extras = {key: value for key, value in request.extras.items() if key != TILED_VAE_KEY}
    if tiled_vae != "auto":
        extras[TILED_VAE_KEY] = tiled_vae
    return request.replace(tiling=tiling, extras=extras)


def preview_settings(mode: str, every: int) -> PreviewSettings:
    try:
        return PreviewSettings(mode, max(1, every))
    except ValueError:  # a hand-edited settings file
        return PreviewSettings()
