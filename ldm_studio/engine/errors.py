"""Errors the engine raises on purpose. Each message is one sentence a user can act on."""

from __future__ import annotations


class EngineError(Exception):
    """Base for failures that reach the user as a readable message."""


class ModelLoadError(EngineError):
    """A model could not be opened: missing files, an unknown or corrupt checkpoint, an unsafe pickle."""


class GenerationError(EngineError):
    """A generation could not run or produced no usable image (out of memory, NaNs...)."""


class CancelledError(EngineError):
    """Raised inside the denoising loop to stop it at the next step; never shown as an error."""
