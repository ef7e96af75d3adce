"""The upscaler files the window offers by name (hires fix's menu): the library folders listed, nothing
opened, no torch, so it is cheap enough for the GUI thread when the menu is shown."""

from __future__ import annotations

from ldm_studio.engine.hires_request import library_upscaler_files


def upscaler_names() -> list[str]:
    """Names (file stems) of the upscaler files in the data dir's ``upscalers/`` and added folders."""
    return [path.stem for path in library_upscaler_files()]
