"""The session model without any widget: a scripted backend behind the real worker thread."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from ldm_studio.app.draft import Draft
from ldm_studio.app.gallery_actions import GalleryActions
from ldm_studio.app.jobs import SavedImage, WalkSpec
from ldm_studio.app.saving import GallerySaver
from ldm_studio.app.session import Session
from ldm_studio.app.settings import SETTINGS_FILE, Settings
from ldm_studio.app.worker import EngineWorker
from ldm_studio.engine.request import MAX_SEED, GenerationRequest
from ldm_studio.gallery.index import GalleryIndex
from ldm_studio.gallery.metadata import ImageMetadata, read_metadata
from ldm_studio.gallery.store import GalleryStore
from ldm_studio.gallery.thumbnails import ThumbnailCache
from ldm_studio.gallery.trash import Trash
from ldm_studio.paths import user_dirs
from tests.app.fake_backend import ScriptedBackend

MODEL = "/models/emoji"


class Recorder:
    """Every emission of the given signals, as (name, args) in order."""

    def __init__(self, session: Session, *names: str) -> None:
        self.events: list[tuple[str, tuple]] = []
        for name in names:
            getattr(session, name).connect(lambda *args, name=name: self.events.append((name, args)))

    def named(self, name: str) -> list[tuple]:
        return [args for event, args in self.events if event == name]


@pytest.fixture
def make_session(qtbot, tmp_path):
    sessions = []

    def make(backend=None, *, saver=None, gallery=None, settings=None) -> Session:
        backend = backend or ScriptedBackend(size=32)
        session = Session(
            EngineWorker(lambda: backend, saver), settings or Settings(), user_dirs().ensure(), gallery
        )
        session.backend = backend
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        assert session.shutdown(timeout=5)


@pytest.fixture
def loaded(qtbot, make_session):
    session = make_session()
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(MODEL)
    return session


def typed(prompt: str, seed: int | None = 7, **fields) -> Draft:
    return Draft(
        GenerationRequest(prompt, steps=fields.pop("steps", 3), **fields), seed, random_seed=seed is None
    )


def finish(qtbot, session: Session, draft: Draft | None = None):
    if draft is not None:
        session.edit(draft)
    with qtbot.waitSignal(session.resultChanged, timeout=5000) as done:
        assert session.generate() is not None
    return done.args[0]


# ---- the model ------------------------------------------------------------------------------------


def test_loading_then_loaded_is_announced_in_order(qtbot, make_session):
    session = make_session()
    seen = Recorder(session, "loadingChanged", "modelInspected", "modelChanged")
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(MODEL)
    assert [name for name, _ in seen.events] == [
        "loadingChanged",
        "modelInspected",
        "loadingChanged",
        "modelChanged",
    ]
    assert seen.named("loadingChanged") == [(MODEL,), ("",)]
    assert session.model.path == MODEL and session.loading_path is None
    assert session.settings.last_model == MODEL


def test_a_failed_load_keeps_the_model_that_was_loaded(qtbot, loaded):
    loaded.backend.failing_paths.add("/broken")
    errors = Recorder(loaded, "error")
    with qtbot.waitSignal(loaded.modelFailed, timeout=5000) as failed:
        loaded.load_model("/broken")
    assert "not a model" in failed.args[0]
    assert errors.named("error") == [(failed.args[0],)]
    assert loaded.model.path == MODEL and loaded.can_generate


def test_a_failed_switch_that_lost_the_old_model_leaves_none(qtbot, loaded):
    loaded.backend.lost_on_failure.add("/models/damaged")
    changes = Recorder(loaded, "modelChanged")
    with qtbot.waitSignal(loaded.modelFailed, timeout=5000) as failed:
        loaded.load_model("/models/damaged")
    assert "could not be loaded again" in failed.args[0]
    assert changes.named("modelChanged") == [(None,)]
    assert loaded.model is None and not loaded.can_generate


def test_generate_without_a_model_says_load_one(qtbot, make_session):
    session = make_session()
    errors = Recorder(session, "error")
    session.edit(typed("cat"))
    assert session.generate() is None
    assert "Load a model first" in errors.named("error")[0][0]
    assert session.running == 0


def test_generate_while_loading_queues_behind_the_load_at_the_native_size(qtbot, make_session):
    backend = ScriptedBackend(size=32, load_gate=threading.Event())
    session = make_session(backend)
    with qtbot.waitSignal(session.loadingChanged, timeout=5000):
        session.load_model(MODEL)
    assert session.can_generate and session.model is None
    session.edit(Draft(GenerationRequest("red heart", width=512, height=512), 3, False, native_size=True))
    request = session.generate()
    assert request.model == MODEL and (request.width, request.height) == (None, None)
    assert session.running == 1 and backend.requests == []
    with qtbot.waitSignal(session.resultChanged, timeout=5000) as done:
        backend.load_gate.set()
    assert (done.args[0].result.request.width, done.args[0].result.request.height) == (32, 32)


def test_a_chosen_size_is_kept_while_the_model_loads(qtbot, make_session):
    session = make_session(ScriptedBackend(load_gate=threading.Event()))
    with qtbot.waitSignal(session.loadingChanged, timeout=5000):
        session.load_model(MODEL)
    session.edit(Draft(GenerationRequest("cat", width=64, height=48), 1, False, native_size=False))
    assert (session.job_request().width, session.job_request().height) == (64, 48)
    session.backend.load_gate.set()


def test_a_new_placement_reloads_the_loaded_model_there(qtbot, loaded):
    with qtbot.waitSignal(loaded.modelChanged, timeout=5000):
        loaded.set_placement("cpu", "float32")
    assert loaded.backend.loads == [MODEL, MODEL]
    loaded.set_placement("cpu", "float32")  # no change, no reload
    assert loaded.placement == ("cpu", "float32") and len(loaded.backend.loads) == 2


def test_model_settings_are_saved_for_the_file_and_reload_it(qtbot, make_session, tmp_path):
    from ldm_studio.engine.checkpoints import get_model_settings

    model = tmp_path / "sd2.safetensors"
    model.write_bytes(b"stand-in")
    session = make_session()
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(model)
    assert session.model_settings() == get_model_settings(model)
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        assert session.save_model_settings({"prediction_type": "v_prediction", "vae_tiling": True})
    assert session.model_settings()["prediction_type"] == "v_prediction"
    assert session.backend.loads == [str(model), str(model)]


# ---- the request being edited ---------------------------------------------------------------------


def test_the_job_request_checks_prompt_and_seed(loaded):
    for draft, reason in (
        (typed("   "), "Type a prompt"),
        (Draft(GenerationRequest("cat"), None, random_seed=False), "Type a seed"),
        (Draft(GenerationRequest("cat"), MAX_SEED + 1, random_seed=False), "at most"),
    ):
        loaded.edit(draft)
        with pytest.raises(ValueError, match=reason):
            loaded.job_request()


def test_a_random_seed_is_drawn_and_announced(qtbot, loaded):
    loaded.edit(typed("  cat  ", seed=None, negative_prompt=" blurry "))
    assert loaded.job_request(random.Random(1)).seed == random.Random(1).randint(0, MAX_SEED)
    with qtbot.waitSignal(loaded.seedUsed, timeout=5000) as used:
        request = loaded.generate()
    assert used.args[0] == request.seed == loaded.last_seed
    assert (request.prompt, request.negative_prompt, request.model) == ("cat", "blurry", MODEL)


def test_reuse_last_seed_fixes_it_in_the_draft(qtbot, loaded):
    finish(qtbot, loaded, typed("cat", seed=None))
    drawn = loaded.last_seed
    with qtbot.waitSignal(loaded.draftChanged) as changed:
        loaded.reuse_last_seed()
    draft, mode = changed.args
    assert mode == "seed" and not draft.random_seed and draft.typed_seed == drawn
    assert loaded.job_request().seed == drawn


@pytest.mark.parametrize("mode", ["all", "prompt", "seed"])
def test_reusing_an_image_fills_the_edited_request(qtbot, loaded, mode):
    loaded.edit(Draft(GenerationRequest("typed", steps=50), 1, random_seed=True))
    metadata = ImageMetadata(prompt="a whale", negative_prompt="blurry", seed=22, steps=12, guidance=5.0)
    with qtbot.waitSignal(loaded.draftChanged) as changed:
        loaded.reuse(metadata, mode)
    draft, emitted = changed.args
    assert emitted == mode and draft is loaded.draft
    request = draft.request
    expected = {
        "all": ("a whale", "blurry", 22, 12, False),
        "prompt": ("a whale", "blurry", None, 50, True),
        "seed": ("typed", "", 22, 50, False),
    }[mode]
    assert (
        request.prompt,
        request.negative_prompt,
        draft.typed_seed if mode != "prompt" else None,
    ) == expected[:3]
    assert (request.steps, draft.random_seed) == expected[3:]


def test_reuse_file_reads_a_foreign_png_and_explains_what_it_cannot(loaded, tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters", "a lighthouse\nSteps: 28, Sampler: Euler a, CFG scale: 6.5, Seed: 4242, Size: 64x48"
    )
    path = tmp_path / "a1111.png"
    Image.new("RGB", (64, 48)).save(path, pnginfo=info)
    errors, statuses = Recorder(loaded, "error"), Recorder(loaded, "status")
    assert loaded.reuse_file(path)
    assert (loaded.draft.request.prompt, loaded.draft.typed_seed, loaded.draft.request.steps) == (
        "a lighthouse",
        4242,
        28,
    )
    assert "an A1111 image" in statuses.named("status")[-1][0]
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert not loaded.reuse_file(tmp_path / "plain.png") and not loaded.reuse_file(tmp_path / "broken.png")
    assert ["no generation settings" in e[0] or "cannot be read" in e[0] for e in errors.named("error")] == [
        True,
        True,
    ]


# ---- the running job ------------------------------------------------------------------------------


def test_a_generation_reports_started_steps_and_result_in_order(qtbot, loaded):
    seen = Recorder(loaded, "runningChanged", "jobStarted", "progress", "resultChanged")
    update = finish(qtbot, loaded, typed("cat", steps=4))
    names = [name for name, _ in seen.events]
    assert names == ["runningChanged", "jobStarted", *["progress"] * 4, "runningChanged", "resultChanged"]
    assert seen.named("runningChanged") == [(True,), (False,)]
    assert [args[0].index for args in seen.named("progress")] == [1, 2, 3, 4]
    assert loaded.last_result is update and loaded.branch_source is update and not loaded.busy


def test_finished_images_are_saved_once_and_carry_their_metadata(qtbot, make_session, tmp_path):
    store = GalleryStore(tmp_path / "gallery")
    session = make_session(saver=GallerySaver(store))
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(MODEL)
    statuses = Recorder(session, "status")
    update = finish(qtbot, session, typed("a fox", seed=40, batch_size=2))
    assert [saved.metadata.seed for saved in update.saved] == [40, 41]
    assert sorted(store.root.rglob("*.png")) == sorted(update.saved_paths)
    assert all(read_metadata(saved.path).request == saved.metadata.request for saved in update.saved)
    assert any("Saved 2 image(s)" in text for text, _ms in statuses.named("status"))


def test_autosave_off_saves_nothing(qtbot, make_session, tmp_path):
    settings = Settings(autosave=False)
    store = GalleryStore(tmp_path / "gallery")
    session = make_session(saver=GallerySaver(store, enabled=lambda: settings.autosave), settings=settings)
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(MODEL)
    assert finish(qtbot, session, typed("a fox")).saved == []
    assert not store.root.exists()


def test_a_save_failure_keeps_the_images_and_save_as_works(qtbot, make_session, tmp_path):
    def full_disk(result):
        raise OSError(28, "No space left on device")

    session = make_session(saver=full_disk)
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(MODEL)
    errors = Recorder(session, "error")
    update = finish(qtbot, session, typed("a fox", seed=9, batch_size=2))
    assert update.saved == [] and len(update.images) == 2
    assert "kept in this session" in errors.named("error")[0][0]
    written = session.save_image_as(1, tmp_path / "rescued")
    assert written == tmp_path / "rescued.png" and read_metadata(written).seed == 10
    assert session.save_image_as(0, tmp_path / "missing" / "x.png") is None
    assert "Try another folder" in errors.named("error")[-1][0]


def test_save_as_before_any_result_says_so(make_session, tmp_path):
    session = make_session()
    errors = Recorder(session, "error")
    assert session.save_image_as(0, tmp_path / "x.png") is None
    assert "no finished image" in errors.named("error")[0][0]


def test_cancel_stops_the_job_and_drops_the_queue(qtbot, loaded):
    gate = threading.Event()
    loaded.backend.gate = gate
    for seed in (1, 2, 3):
        loaded.edit(typed("cat", seed=seed, steps=5))
        loaded.generate()
    assert loaded.running == 3
    seen = Recorder(loaded, "jobCancelled", "resultChanged")
    qtbot.waitUntil(lambda: len(loaded.backend.requests) == 1)
    loaded.cancel()
    gate.set()
    qtbot.waitUntil(lambda: len(seen.named("jobCancelled")) == 3)
    assert seen.named("resultChanged") == [] and loaded.running == 0 and not loaded.busy
    assert len(loaded.backend.requests) == 1


def test_a_failure_is_told_and_the_next_generation_works(qtbot, loaded):
    loaded.backend.fail_with = "Out of memory at 32x32. Try a smaller size."
    seen = Recorder(loaded, "jobFailed", "error", "errorCleared")
    loaded.edit(typed("cat"))
    with qtbot.waitSignal(loaded.jobFailed, timeout=5000):
        loaded.generate()
    assert seen.named("error") == [("Out of memory at 32x32. Try a smaller size.",)]
    assert loaded.running == 0 and loaded.last_result is None
    loaded.backend.fail_with = ""
    finish(qtbot, loaded)
    assert [name for name, _ in seen.events][-1] == "errorCleared"


# ---- the branch point -----------------------------------------------------------------------------


def test_branch_continues_the_last_result_and_records_its_parent_image(qtbot, make_session, tmp_path):
    store = GalleryStore(tmp_path / "gallery")
    session = make_session(saver=GallerySaver(store))
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(MODEL)
    parent = finish(qtbot, session, typed("red heart", seed=5, steps=6, width=32, height=32, batch_size=2))
    session.edit(typed("blue heart", seed=999, steps=6, width=64, height=64))
    started = Recorder(session, "jobStarted")
    with qtbot.waitSignal(session.resultChanged, timeout=5000) as done:
        request = session.branch_from(2)
    branch = session.backend.branches[-1]
    assert branch.step == 2 and branch.parent is parent.result
    assert branch.parent_image == str(parent.saved_paths[0])
    assert (request.prompt, request.seed, request.width, request.batch_size) == ("blue heart", 5, 32, 2)
    assert started.named("jobStarted")[0][1] == 2  # the timeline keeps the parent's first two steps
    child = done.args[0]
    assert child.result.metadata["parent_image"] == str(parent.saved_paths[0])
    assert read_metadata(child.saved_paths[0]).extra["parent_image"] == str(parent.saved_paths[0])
    assert session.branch_source is child


def test_nothing_to_branch_from_is_explained(loaded):
    errors = Recorder(loaded, "error")
    loaded.edit(typed("cat"))
    assert loaded.branch_from(2) is None
    assert "no finished generation" in errors.named("error")[0][0]


def test_a_new_model_ends_the_branch_point_but_keeps_the_images(qtbot, loaded):
    finish(qtbot, loaded, typed("cat"))
    with qtbot.waitSignal(loaded.modelChanged, timeout=5000):
        loaded.load_model("/models/other")
    assert loaded.branch_source is None and loaded.last_result is not None
    assert loaded.suggested_timeline_path() is None


# ---- longer tasks ---------------------------------------------------------------------------------


def test_export_timeline_hands_the_last_result_to_the_worker(qtbot, loaded, tmp_path):
    update = finish(qtbot, loaded, typed("cat"))
    seen = Recorder(loaded, "taskStarted", "runningChanged", "taskFinished")
    target = tmp_path / "timeline.gif"
    with qtbot.waitSignal(loaded.taskFinished, timeout=5000):
        assert loaded.export_timeline(target, full=True, fps=8, hold=0.5)
    assert loaded.backend.exports == [(update.result, target, True, 8, 0.5)]
    assert seen.named("runningChanged") == [(True,), (False,)] and loaded.task_running == ""
    assert seen.named("taskFinished") == [("export", target)]


def test_a_walk_runs_from_the_edited_request(qtbot, loaded, tmp_path):
    loaded.edit(typed("red heart", seed=3, batch_size=4))
    start = loaded.walk_start()
    assert (start.seed, start.batch_size, start.model) == (3, 1, MODEL)
    frames = Recorder(loaded, "taskProgress")
    with qtbot.waitSignal(loaded.taskFinished, timeout=5000) as done:
        loaded.walk(WalkSpec(start, 9, "blue heart", 3), tmp_path / "walk.webp", fps=6)
    assert done.args == ["walk", tmp_path / "walk.webp"]
    assert [(args[1], args[2]) for args in frames.named("taskProgress")] == [(1, 3), (2, 3), (3, 3)]


# ---- settings and the gallery ---------------------------------------------------------------------


def test_settings_round_trip_through_the_file(qtbot, loaded):
    loaded.edit(Draft(GenerationRequest("grinning face", steps=33, seed=12), 12, random_seed=False))
    loaded.set_preview("full", 4)
    loaded.set_placement("cpu", "bfloat16")
    loaded.save_settings("R0VPTQ==", "U1BMSVQ=")
    saved = json.loads((user_dirs().config / SETTINGS_FILE).read_text())
    assert (saved["last_request"]["prompt"], saved["last_request"]["steps"]) == ("grinning face", 33)
    assert (saved["preview_mode"], saved["preview_every"], saved["dtype"]) == ("full", 4, "bfloat16")
    again = Session(EngineWorker(ScriptedBackend), Settings.load(user_dirs().config), user_dirs())
    assert again.draft.request.steps == 33 and again.draft.typed_seed == 12 and not again.draft.random_seed
    assert (str(again.preview.mode), again.preview.every, again.placement) == ("full", 4, ("cpu", "bfloat16"))
    assert again.settings.window_geometry == "R0VPTQ==" and again.settings.last_model == MODEL


def test_an_empty_prompt_does_not_overwrite_the_remembered_one(loaded):
    loaded.settings.last_request = GenerationRequest("a good one").to_dict()
    loaded.edit(typed(""))
    loaded.save_settings()
    assert Settings.load(user_dirs().config).last_request["prompt"] == "a good one"


@pytest.fixture
def gallery(qtbot, tmp_path):
    store = GalleryStore(tmp_path / "gallery")
    actions = GalleryActions(
        store,
        GalleryIndex(tmp_path / "index.sqlite3"),
        ThumbnailCache(tmp_path / "thumbs"),
        trash=Trash(tmp_path / "trash", use_system_trash=False),
    )
    return actions


def saved_images(store: GalleryStore, *prompts: str) -> list[SavedImage]:
    saved = []
    for seed, prompt in enumerate(prompts):
        request = GenerationRequest(prompt, seed=seed, width=16, height=16)
        path = store.save(Image.new("RGB", (16, 16)), request, model_name="m", model_hash="h")
        saved.append(SavedImage(path, read_metadata(path)))
    return saved


def test_results_reach_the_gallery_and_reuse_comes_back_to_the_draft(qtbot, make_session, gallery):
    session = make_session(saver=GallerySaver(gallery.store), gallery=gallery)
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(MODEL)
    finish(qtbot, session, typed("a blue whale", seed=77, batch_size=2))
    assert gallery.model.rowCount() == 2 and gallery.model_names() == ["fake"]
    row = [row for row in range(2) if gallery.metadata_for(row).seed == 78][0]
    with qtbot.waitSignal(session.draftChanged):
        gallery.reuse(row, "all")
    assert session.draft.request.prompt == "a blue whale" and session.job_request().seed == 78
    session.gallery = None  # the fixture's gallery closes itself
    gallery.shutdown()


def test_gallery_delete_and_undo(qtbot, gallery):
    saved = saved_images(gallery.store, "a fox", "a whale")
    gallery.add_saved(saved)
    assert gallery.total() == 2
    with qtbot.waitSignal(gallery.deleted) as deleted:
        gallery.delete([0])
    report = deleted.args[0]
    assert report.moved == 1 and report.can_undo and "LDM Studio trash" in report.text
    assert gallery.total() == 1 and sum(not image.path.exists() for image in saved) == 1
    with qtbot.waitSignal(gallery.undoDone) as undone:
        restored = gallery.undo_delete()
    assert undone.args == [1] and len(restored) == 1 and all(image.path.exists() for image in saved)
    assert gallery.total() == 2 and gallery.model.rowCount() == 2 and not gallery.can_undo
    assert gallery.undo_delete() == []
    gallery.shutdown()


def test_gallery_export_never_overwrites(gallery, tmp_path):
    gallery.add_saved(saved_images(gallery.store, "a fox", "a whale"))
    target = tmp_path / "export"
    target.mkdir()
    first = gallery.export_to(target, [0, 1])
    again = gallery.export_to(target, [0])
    assert len(first) == 2 and again[0] not in first and again[0].exists()
    assert sorted(read_metadata(path).prompt for path in first) == ["a fox", "a whale"]
    gallery.shutdown()


def test_gallery_import_indexes_a_folder_in_the_background(qtbot, gallery, tmp_path):
    outside = GalleryStore(tmp_path / "elsewhere")
    saved_images(outside, "imported one", "imported two")
    with qtbot.waitSignal(gallery.model.reconciled, timeout=10_000) as done:
        gallery.import_folder(Path(outside.root))
    assert done.args[0].added == 2 and gallery.total() == 2
    gallery.shutdown()
