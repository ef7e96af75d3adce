"""How a generation ends when it does not finish: cancel checks inside the networks, and every
exception turned into the one ``Failed`` sentence the user reads (the traceback goes to the log)."""

from __future__ import annotations

import contextlib
import gc
import logging
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import torch

from ldm_studio.engine.errors import CancelledError, EngineError, GenerationError
from ldm_studio.engine.events import Cancelled, Failed
from ldm_studio.engine.generation.decode import decoder_blocks
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.request import GenerationRequest

log = logging.getLogger(__name__)

OOM_HINT = (
    "Try a smaller size or batch, turn on VAE tiling or attention slicing in the model settings, "
    "or use half precision (fp16/bf16)."
)


def network_blocks(model: LoadedModel) -> list[torch.nn.Module]:
    """The denoiser's and the VAE decoder's top-level blocks: cancel points a fraction of a step apart."""
    return model.denoiser.blocks() + decoder_blocks(model)


@contextlib.contextmanager
def cancellable(
    blocks: list[torch.nn.Module], should_stop: Callable[[], bool], steps_done: Callable[[], int]
) -> Iterator[None]:
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


def check_latents(latents: torch.Tensor) -> None:
    if not torch.isfinite(latents).all():
        raise GenerationError(
            "The model produced invalid numbers (NaN) during denoising; "
            "try float32 precision or a different sampler."
        )


def check_images(images: torch.Tensor) -> None:
    if not torch.isfinite(images).all():
        raise GenerationError(
            "The VAE produced an invalid (black) image even in float32; the model's VAE may be broken."
        )


def first_line(error: BaseException) -> str:
    lines = str(error).splitlines()
    return lines[0][:200] if lines else type(error).__name__


def _out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def outcome_of(error: Exception, request: GenerationRequest) -> Cancelled | Failed:
    """The event for a generation that raised ``error`` (call inside the ``except`` block)."""
    if isinstance(error, CancelledError):
        return Cancelled(request, int(error.args[0]) if error.args else 0)
    detail = traceback.format_exc()
    if isinstance(error, EngineError):  # ours, LoRA and prompt errors: a sentence meant for the user
        return Failed(str(error), detail)
    if _out_of_memory(error):
        return Failed(f"Out of memory at {request.width}x{request.height}. {OOM_HINT}", detail)
    # a fault in a library or in us must not take the app down with it
    log.exception("generation failed")
    if isinstance(error, RuntimeError):
        return Failed(f"Generation failed: {first_line(error)}", detail)
    return Failed(f"Generation failed ({type(error).__name__}): {first_line(error)}", detail)


def release_memory() -> None:
    """Free what a failed step held (an out-of-memory above all); a full collection holds the GIL
    for a few hundred ms, so a plain cancel does without it."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
