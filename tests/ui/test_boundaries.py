"""Widgets show state and send intents: from the engine and the gallery they import plain values only.

Everything that does work (loading, generating, saving, scanning, deleting) is reached through the
session model in ``ldm_studio.app``. This test reads every ``ldm_studio/ui/*.py`` (without importing
it) and checks each import of ``ldm_studio.engine``, ``ldm_studio.gallery`` or ``ldm_studio.training``
against the allowlist of value types below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ldm_studio

UI = Path(ldm_studio.__file__).parent / "ui"
GUARDED = ("ldm_studio.engine", "ldm_studio.gallery", "ldm_studio.training")
VALUES = {
    "ldm_studio.engine.request": {"GenerationRequest", "MAX_SEED"},
    "ldm_studio.engine.samplers": {
        "sampler_names",
        "DEFAULT_SAMPLER",
        # the schedule-type table and its pure look-ups (ui/schedule_box.py)
        "SAMPLERS",
        "DEFAULT_SCHEDULE",
        "DEFAULT_TCD_GAMMA",
        "schedule_names",
        "schedules_for",
        "tcd_gamma",
    },
    "ldm_studio.engine.distilled": {"KIND_LABELS", "NOT_DISTILLED", "SETTING_KEY"},  # the settings' names
    "ldm_studio.engine.preview_settings": {"PreviewSettings", "PreviewMode"},
    # hires fix's value and its pure A1111 arithmetic / names (ui/hires_panel.py, ui/create_page.py)
    "ldm_studio.engine.hires_request": {
        "HiresFix",
        "DEFAULT_UPSCALER",
        "LATENT_MODES",
        "MAX_SCALE",
        "MAX_SIDE",
        "second_pass_start",
        "upscaler_choices",
    },
    # the outpaint value and its limits (ui/outpaint_box.py, ui/source_settings.py)
    "ldm_studio.engine.outpaint": {"Outpaint", "DEFAULT_FEATHER", "FILLS", "MAX_EXTENSION", "STEP"},
    "ldm_studio.engine.events": {"Started", "Step", "Finished", "Cancelled", "Failed"},
    "ldm_studio.gallery.metadata": {"ImageMetadata"},
    "ldm_studio.gallery.index": {"GalleryEntry", "GalleryQuery", "ReconcileReport"},
    "ldm_studio.gallery.entries": {"GalleryEntry", "GalleryQuery", "ReconcileReport"},
}


def guarded_imports(source: str) -> list[tuple[str, str]]:
    """(module, name) for every import of a guarded package; name is "" for ``import module``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.startswith(GUARDED)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [alias.name for alias in node.names]
            if node.module == "ldm_studio":  # from ldm_studio import engine
                found += [(f"ldm_studio.{name}", "") for name in names if f"ldm_studio.{name}" in GUARDED]
            elif node.module.startswith(GUARDED):
                found += [(node.module, name) for name in names]
    return found


def disallowed(source: str) -> list[str]:
    return [
        f"{module}.{name}" if name else module
        for module, name in guarded_imports(source)
        if name not in VALUES.get(module, set())
    ]


def test_widgets_import_only_value_types_from_the_engine_and_gallery():
    files = sorted(UI.glob("*.py"))
    assert len(files) > 10  # the ui package really was read
    offenders = {path.name: bad for path in files if (bad := disallowed(path.read_text(encoding="utf-8")))}
    assert offenders == {}


def test_the_check_catches_what_it_should():
    source = """
import ldm_studio.engine.generate
from ldm_studio import gallery
from ldm_studio.engine.library import ModelLibrary
from ldm_studio.gallery.store import GalleryStore
from ldm_studio.engine.request import GenerationRequest
def later():
    from ldm_studio.engine.checkpoints.settings import get_model_settings
"""
    assert disallowed(source) == [
        "ldm_studio.engine.generate",
        "ldm_studio.gallery",
        "ldm_studio.engine.library.ModelLibrary",
        "ldm_studio.gallery.store.GalleryStore",
        "ldm_studio.engine.checkpoints.settings.get_model_settings",
    ]
