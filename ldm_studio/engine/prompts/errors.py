"""The one error type the prompt toolkit raises: a sentence the prompt panel can show as it is."""

from __future__ import annotations

from ldm_studio.engine.errors import EngineError


class PromptError(EngineError, ValueError):
    """A prompt that cannot be turned into conditioning (A1111 would crash on it or draw NaNs)."""


class UnsupportedPrompt(PromptError):
    """Valid A1111 syntax that this engine does not implement (for now: composable diffusion, ``AND``)."""
