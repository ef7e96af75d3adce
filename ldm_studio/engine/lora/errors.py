"""The error the LoRA code raises on purpose: one sentence a user can act on."""

from __future__ import annotations

from ldm_studio.engine.errors import EngineError


class LoraError(EngineError):
    """A LoRA file that cannot be read, is of a kind we do not apply, or does not fit the loaded model."""
