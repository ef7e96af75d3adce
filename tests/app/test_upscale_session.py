"""Upscaling a gallery image through the session and the real worker thread: a built-in resize and a
tiny ESRGAN file from the library, each saved as a new gallery image that names its parent; cancel."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from ldm_studio.app.gallery_actions import GalleryActions
from ldm_studio.app.jobs import TASK_UPSCALE
from ldm_studio.app.session import Session
from ldm_studio.app.settings import Settings
from ldm_studio.app.upscale_task import default_factor
from ldm_studio.app.worker import EngineWorker
from ldm_studio.engine.catalog import UPSCALER
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.upscalers.networks import RRDBNet
from ldm_studio.gallery.index import GalleryIndex
from ldm_studio.gallery.metadata import read_metadata
from ldm_studio.gallery.store import GalleryStore
from ldm_studio.gallery.thumbnails import ThumbnailCache
from ldm_studio.gallery.trash import Trash
from ldm_studio.gallery.upscaled import upscale_record
from ldm_studio.paths import user_dirs
from tests.app.fake_backend import ScriptedBackend
from tests.engine.test_upscalers import real_esrgan_keys, smooth_image, tiny_rrdb, write_upscaler


def tiny_rrdb_2x() -> RRDBNet:
    torch.manual_seed(0)
    network = RRDBNet(features=8, growth=4, blocks=2, upsamples=1).eval()
    with torch.no_grad():
        network.conv_last.bias.fill_(0.5)
    return network


@pytest.fixture
def studio(qtbot, tmp_path):
    """A session over a scripted engine (no model needed to upscale) with a real gallery."""
    gallery = GalleryActions(
        GalleryStore(tmp_path / "gallery"),
        GalleryIndex(tmp_path / "index.sqlite3"),
        ThumbnailCache(tmp_path / "thumbs"),
        trash=Trash(tmp_path / "trash", use_system_trash=False),
    )
    backend = ScriptedBackend(size=32)
    session = Session(EngineWorker(lambda: backend), Settings(), user_dirs().ensure(), gallery)
    yield session
    assert session.shutdown(timeout=10)


def saved_source(session: Session, width: int = 24, height: int = 16) -> Path:
    request = GenerationRequest("a lighthouse at dusk", seed=42, width=width, height=height)
    path = session.gallery.store.save(
        smooth_image(width, height), request, model_name="tiny", model_hash="abc"
    )
    session.gallery.model.add_saved(path)
    return path


def gallery_paths(session: Session) -> set[Path]:
    model = session.gallery.model
    return {entry.path for entry in model.entries(list(range(model.rowCount())))}


def upscale(qtbot, session: Session, source: Path, upscaler: str, factor: int) -> Path:
    with qtbot.waitSignal(session.taskFinished, timeout=30_000) as finished:
        assert session.upscale_image(source, upscaler, factor)
    kind, path = finished.args
    assert kind == TASK_UPSCALE and not session.busy
    return Path(path)


def test_a_builtin_resize_saves_a_new_gallery_image_that_names_its_parent(qtbot, studio):
    source = saved_source(studio)
    written = upscale(qtbot, studio, source, "Lanczos", 2)

    assert written.exists() and written != source and written.parent.parent == studio.gallery.root
    with Image.open(written) as image:
        assert image.size == (48, 32)
    assert gallery_paths(studio) == {source.resolve(), written.resolve()}
    metadata = read_metadata(written)
    assert metadata.raw["postprocessing"] == "Postprocess upscale by: 2, Postprocess upscaler: Lanczos"
    record = upscale_record(metadata)
    assert (record["parent"], record["upscaler"], record["upscale"]) == (str(source.resolve()), "Lanczos", 2)
    assert metadata.seed == 42 and metadata.prompt == "a lighthouse at dusk"  # still reusable


def test_an_esrgan_file_from_the_library_is_offered_at_its_own_scale_and_runs(qtbot, studio):
    write_upscaler(
        UPSCALER.default_folder() / "2x-Tiny.pth", real_esrgan_keys(tiny_rrdb_2x()), wrap="params_ema"
    )
    choices = {choice.label: choice for choice in studio.upscaler_choices()}
    assert list(choices)[:3] == ["Lanczos", "Bicubic", "Nearest"]
    tiny = choices["2x-Tiny (2×)"]
    assert tiny.scale == 2 and not tiny.problem and default_factor(tiny) == 2
    source = saved_source(studio)
    progress = []
    studio.taskProgress.connect(lambda kind, done, total, _image: progress.append((kind, done, total)))

    written = upscale(qtbot, studio, source, tiny.value, default_factor(tiny))

    with Image.open(written) as image:
        assert image.size == (48, 32)
    assert progress and progress[-1] == (TASK_UPSCALE, 1, 1)
    metadata = read_metadata(written)
    assert metadata.raw["postprocessing"] == "Postprocess upscale by: 2, Postprocess upscaler: 2x-Tiny"
    assert upscale_record(metadata)["parent"] == str(source.resolve())
    assert written.resolve() in gallery_paths(studio)


def test_cancel_midway_leaves_no_file_and_no_gallery_entry(qtbot, studio):
    write_upscaler(UPSCALER.default_folder() / "4x-Tiny.pth", real_esrgan_keys(tiny_rrdb()))
    source = saved_source(studio, 600, 400)  # 4 × 3 tiles of the default 192 pixels
    before = sorted(studio.gallery.root.rglob("*"))
    studio.taskProgress.connect(lambda *_args: studio.cancel())
    with qtbot.waitSignal(studio.taskFailed, timeout=60_000) as failed:
        assert studio.upscale_image(source, str(UPSCALER.default_folder() / "4x-Tiny.pth"), 2)
    assert failed.args == [TASK_UPSCALE, ""]  # "" is a cancel, not a failure
    assert sorted(studio.gallery.root.rglob("*")) == before  # no PNG, no temp file
    assert gallery_paths(studio) == {source.resolve()} and not studio.busy


def test_a_missing_upscaler_or_image_is_explained(qtbot, studio):
    source = saved_source(studio)
    errors = []
    studio.error.connect(errors.append)
    with qtbot.waitSignal(studio.taskFailed, timeout=10_000) as failed:
        studio.upscale_image(source, "no-such-upscaler", 2)
    assert "no upscaler called 'no-such-upscaler'" in failed.args[1] and errors
    with qtbot.waitSignal(studio.taskFailed, timeout=10_000) as failed:
        studio.upscale_image(source.with_name("gone.png"), "Lanczos", 2)
    assert "gone.png is no longer there" in failed.args[1]
    assert gallery_paths(studio) == {source.resolve()}
