"""The preview a job gets: "Auto" follows the model's measured cost (measured from its first run and
remembered in the settings), "Tiny decoder" gets its family's file; the panel's reason line."""

from __future__ import annotations

from ldm_studio.app.backend import ModelSummary
from ldm_studio.app.preview_auto import cost_key, resolved
from ldm_studio.app.settings import Settings
from ldm_studio.engine.preview_settings import PreviewMode, PreviewSettings
from tests.app.fake_backend import ScriptedBackend
from tests.app.test_session import MODEL, finish, make_session, typed  # noqa: F401


def summary(**fields) -> ModelSummary:
    values = dict(name="m", path="/m", family="sd1", device="CPU", dtype="float32", native_size=64)
    return ModelSummary(**{**values, **fields})


def test_auto_before_measuring_uses_the_tiny_decoder_if_installed_else_fast(tmp_path):
    settings = Settings()
    auto = PreviewSettings("auto", 5)
    chosen, reason = resolved(auto, summary(), settings)
    assert chosen.mode is PreviewMode.FAST
    assert reason == "Fast preview: full decode cost not measured yet, no tiny decoder for sd1"
    installed = str(tmp_path / "taesd_decoder.pth")
    chosen, reason = resolved(auto, summary(tiny_decoders=(installed,)), settings)
    assert chosen.mode is PreviewMode.TINY and chosen.tiny_decoder == installed
    assert reason == "Tiny decoder preview: full decode cost not measured yet"


def test_auto_with_a_measured_cost_and_the_users_choice_of_file(tmp_path):
    model = summary(tiny_decoders=("/library/taesd_decoder.pth",))
    settings = Settings(preview_costs={cost_key(model): {"decode_seconds": 0.009, "step_seconds": 0.1}})
    chosen, reason = resolved(PreviewSettings("auto", 5), model, settings)
    assert (chosen.mode, chosen.every) == (PreviewMode.FULL, 1)
    assert reason == "Full preview: decode is 9% of a step"
    settings.preview_costs[cost_key(model)] = {"decode_seconds": 22.3, "step_seconds": 12.8}
    mine = tmp_path / "my_taesd.safetensors"
    mine.write_bytes(b"x")
    settings.tiny_decoders["sd1"] = str(mine)
    chosen, reason = resolved(PreviewSettings("auto", 5), model, settings)
    assert chosen.mode is PreviewMode.TINY and chosen.tiny_decoder == str(mine)
    assert reason == "Tiny decoder preview: full decode is 174% of a step"
    # the same file on another device is measured again
    assert cost_key(summary(device="CUDA")) != cost_key(model)


def test_tiny_mode_without_a_file_says_it_shows_fast():
    chosen, reason = resolved(PreviewSettings("tiny"), summary(family="sdxl"), Settings())
    assert chosen.mode is PreviewMode.FAST and reason == "Fast preview: no tiny decoder for sdxl"
    # a plain choice is kept as it is, with nothing to explain
    assert resolved(PreviewSettings("full", 3), summary(), Settings()) == (PreviewSettings("full", 3), "")


def test_the_first_run_measures_the_cost_and_the_next_run_uses_it(qtbot, make_session):  # noqa: F811
    backend = ScriptedBackend(size=32, step_delay=0.01, finished_elapsed=30.0)  # decode >> a step
    session = make_session(backend)
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(MODEL)
    reasons = []
    session.preview_auto.reasonChanged.connect(reasons.append)
    session.set_preview("auto", 5)
    finish(qtbot, session, typed("cat", steps=4))
    key = cost_key(session.model)
    measured = session.settings.preview_costs[key]
    assert measured["decode_seconds"] > 29.0 and 0.005 < measured["step_seconds"] < 1.0
    assert reasons[-1].startswith("Fast preview: full decode is more than 10× a step")
    finish(qtbot, session, typed("dog", steps=4))
    assert session.settings.preview_costs[key] == measured  # measured once, not again
    assert [preview.mode for preview in backend.previews] == [PreviewMode.FAST, PreviewMode.FAST]


def test_a_cheap_decode_turns_auto_into_full_previews_every_step(qtbot, make_session):  # noqa: F811
    backend = ScriptedBackend(size=32)
    session = make_session(backend)
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(MODEL)
    session.settings.preview_costs[cost_key(session.model)] = {"decode_seconds": 0.004, "step_seconds": 0.05}
    reasons = []
    session.preview_auto.reasonChanged.connect(reasons.append)
    session.set_preview("auto", 5)
    assert reasons == ["Full preview: decode is 8% of a step"]  # said before anything runs
    finish(qtbot, session, typed("dog", steps=5))
    assert backend.previews[-1] == PreviewSettings("full", 1)
    session.set_preview("fast", 5)
    assert reasons[-1] == ""  # a plain choice needs no reason
