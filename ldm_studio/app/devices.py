"""Which accelerators torch sees, for the About dialog (imports torch: cheap once the worker has)."""

from __future__ import annotations


def available_devices() -> str:
    """'CPU, CUDA' or 'unknown (why)' when torch cannot be imported."""
    try:
        from ldm_studio.engine.device import available_devices as probe
    except ImportError as error:
        return f"unknown ({error})"
    return ", ".join(device.upper() for device in probe())
