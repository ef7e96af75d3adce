"""A gallery folder that cannot be written: the images stay in the session, the user is told, and can
save them elsewhere.

Both faults are injected at the file-system call (these tests may run as root, which ignores
permission bits): a full disk fails in the middle of writing, a read-only folder at opening.
"""

from __future__ import annotations

import builtins
import errno

import numpy as np
import pytest
from PIL import Image

from ldm_studio.app.saving import save_finished, save_image_as
from ldm_studio.engine.preview_settings import PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery import store as store_module
from ldm_studio.gallery.metadata import read_metadata
from ldm_studio.gallery.store import GallerySaveError, GalleryStore
from tests.faults.helpers import assert_logged_with_traceback, assert_one_readable_sentence

REQUEST = GenerationRequest("a yellow star", seed=21, steps=2, guidance=5, batch_size=2)


class FullDiskFile:
    """An open file on a full disk: opening works, writing fails with ENOSPC."""

    def __init__(self, handle) -> None:
        self.handle = handle

    def __enter__(self) -> FullDiskFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def full_disk_open(file, mode="r", *args, **kwargs):
    handle = builtins.open(file, mode, *args, **kwargs)  # noqa: SIM115 (closed by FullDiskFile or caller)
    return FullDiskFile(handle) if any(flag in mode for flag in "wxa") else handle


def read_only_open(file, mode="r", *args, **kwargs):
    if any(flag in mode for flag in "wxa"):
        raise OSError(errno.EROFS, "Read-only file system", str(file))
    return builtins.open(file, mode, *args, **kwargs)


FAULTS = {"disk full": (full_disk_open, "the disk is full"), "read-only": (read_only_open, "read-only")}


@pytest.fixture(params=list(FAULTS))
def broken_gallery(request, monkeypatch, tmp_path):
    opener, reason = FAULTS[request.param]
    monkeypatch.setattr(store_module, "open", opener, raising=False)
    return GalleryStore(tmp_path / "gallery"), reason


def test_images_stay_in_the_session_and_can_be_saved_elsewhere(qtbot, real_worker, broken_gallery, tmp_path):
    worker, recorder = real_worker
    store, reason = broken_gallery
    worker._save_results = lambda result: recorder(result) + save_finished(store, result)
    with qtbot.waitSignal(worker.jobFinished, timeout=30_000) as done:
        worker.generate(REQUEST, PreviewSettings("off"))
    update = done.args[0]

    assert update.saved == [] and len(update.images) == 2
    assert reason in update.save_error and "kept in this session" in update.save_error
    assert_one_readable_sentence(update.save_error.replace(". ", ", "))
    leftovers = [path for path in store.root.rglob("*") if path.is_file()] if store.root.exists() else []
    assert leftovers == []  # no half-written PNG or temp file in the gallery

    elsewhere = tmp_path / "elsewhere" / "star"
    elsewhere.parent.mkdir()
    written = save_image_as(update.result, 1, elsewhere)
    assert written == elsewhere.with_name("star.png")
    with Image.open(written) as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(update.result.images[1]))
    assert read_metadata(written).seed == REQUEST.seed + 1


def test_save_as_into_a_read_only_folder_says_why_and_keeps_the_old_file(monkeypatch, tmp_path, tiny_model):
    from ldm_studio.app import saving
    from ldm_studio.engine.generate import generate

    result = generate(tiny_model, REQUEST.replace(batch_size=1))
    target = tmp_path / "keep.png"
    target.write_bytes(b"the old file")
    monkeypatch.setattr(saving, "open", read_only_open, raising=False)
    with pytest.raises(GallerySaveError) as raised:
        save_image_as(result, 0, target)
    assert_one_readable_sentence(str(raised.value))
    assert "read-only" in str(raised.value).lower()
    assert target.read_bytes() == b"the old file"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.png"]


def test_the_window_tells_the_user_and_offers_save_as(qtbot, make_window, broken_gallery, log_file, tmp_path):
    store, reason = broken_gallery
    window = make_window(lambda result: save_finished(store, result))
    window.prompt_panel.set_request(REQUEST)
    with qtbot.waitSignal(window.session.worker.jobFinished, timeout=30_000):
        window.generate()
    qtbot.waitUntil(lambda: window.create_page.results.count() == 2)

    banner = window.banner_text()
    assert reason in banner and "Save image as" in banner  # says what happened and the way out
    assert_one_readable_sentence(banner.replace(". ", ", "))
    assert_logged_with_traceback(log_file, reason)
    assert window.save_action.isEnabled()
    window.create_page.results.setCurrentRow(1)
    written = window.save_image_as(str(tmp_path / "rescued.png"))
    assert written is not None and read_metadata(written).seed == REQUEST.seed + 1
