"""The session with LoRAs, embeddings and clip skip: reuse resolves them, a model brings its default."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from ldm_studio.app.draft import with_resolved_networks
from ldm_studio.app.network_entries import NetworkEntry
from ldm_studio.app.network_resolution import resolve_networks
from ldm_studio.gallery.networks import NetworkRef
from ldm_studio.paths import user_dirs
from tests.app import test_session
from tests.app.network_files import (
    Sd1Backend,
    a1111_embedding_hash,
    a1111_lora_hash,
    write_embedding,
    write_lora,
)
from tests.app.test_session import MODEL, Recorder, typed

make_session = test_session.make_session  # the same fixture: a session over a scripted backend


def a1111_png(path: Path, lora_hash: str, embedding_hash: str) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "a red fox, <lora:fox_style:0.8>, <lora:ink:1>\n"
        "Negative prompt: bad-hands, blurry\n"
        "Steps: 12, Sampler: Euler a, CFG scale: 6.5, Seed: 1234, Size: 512x512, Clip skip: 2, "
        f'Lora hashes: "fox_style: {lora_hash}, ink: abcdefabcdef", TI hashes: "bad-hands: {embedding_hash}"',
    )
    Image.new("RGB", (16, 16)).save(path, pnginfo=info)
    return path


@pytest.fixture
def sd1(qtbot, make_session):
    session = make_session(Sd1Backend(size=32))
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(MODEL)
    return session


def test_reuse_names_what_is_missing_in_one_sentence_and_reuses_the_rest(qtbot, sd1, tmp_path):
    data = user_dirs().data
    fox = write_lora(data / "loras" / "fox_style.safetensors")
    write_embedding(data / "embeddings" / "unrelated.safetensors")
    errors = Recorder(sd1, "error")
    png = a1111_png(tmp_path / "a1111.png", a1111_lora_hash(fox), "111111111111")
    with qtbot.waitSignal(sd1.networks.resolved, timeout=20000):
        assert sd1.reuse_file(png)
    qtbot.waitUntil(lambda: bool(errors.named("error")), timeout=2000)
    assert errors.named("error") == [
        ("Not in your library: ink (LoRA), bad-hands (embedding) — the rest was reused.",)
    ]
    request = sd1.draft.request
    assert (request.seed, request.steps, request.clip_skip) == (1234, 12, 2)
    assert request.prompt == "a red fox, <lora:fox_style:0.8>, <lora:ink:1>"
    assert sd1.job_request().clip_skip == 2  # and on to the engine


def test_a_renamed_file_is_found_by_hash_and_the_prompts_rewritten(qtbot, sd1, tmp_path):
    data = user_dirs().data
    fox = write_lora(data / "loras" / "fox_v2.safetensors", seed=5)
    ink = write_lora(data / "loras" / "ink.safetensors", seed=6)
    hands = write_embedding(data / "embeddings" / "hands_fixed.safetensors")
    del ink
    changes = Recorder(sd1, "draftChanged", "error", "status")
    png = a1111_png(tmp_path / "a1111.png", a1111_lora_hash(fox), a1111_embedding_hash(hands))
    with qtbot.waitSignal(sd1.networks.resolved, timeout=20000):
        assert sd1.reuse_file(png)
    qtbot.waitUntil(lambda: len(changes.named("draftChanged")) == 2, timeout=2000)
    assert [mode for _draft, mode in changes.named("draftChanged")] == ["all", "prompt"]
    request = sd1.draft.request
    assert request.prompt == "a red fox, <lora:fox_v2:0.8>, <lora:ink:1>"
    assert request.negative_prompt == "hands_fixed, blurry"
    assert changes.named("error") == []
    assert any("fox_style is fox_v2 in your library" in text for text, _ms in changes.named("status"))


def test_typing_before_the_lookup_answers_wins_over_a_rename():
    reused = typed("a fox <lora:fox_style:1>")
    resolution = resolve_networks(
        reused.request.prompt,
        "",
        [NetworkRef("fox_style", "lora", "a" * 12)],
        [NetworkEntry("lora", "fox_v2", Path("fox_v2.safetensors"), sha256="a" * 64)],
        lambda entry: entry.sha256,
    )
    assert with_resolved_networks(reused, resolution).request.prompt == "a fox <lora:fox_v2:1>"
    assert with_resolved_networks(typed("my own prompt"), resolution) is None


def test_a_models_clip_skip_default_is_adopted_when_it_loads(qtbot, make_session):
    from ldm_studio.engine.checkpoints import set_model_settings

    set_model_settings(Path("/models/anime"), clip_skip=2)
    session = make_session(Sd1Backend(size=32))
    changes = Recorder(session, "draftChanged")
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model("/models/anime")
    assert session.draft.request.clip_skip == 2
    assert [mode for _draft, mode in changes.named("draftChanged")] == ["clip_skip"]
    session.edit(typed("fox", clip_skip=3))
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(MODEL)  # no default of its own: the panel's value stays
    assert session.draft.request.clip_skip == 3
    with pytest.raises(ValueError, match="clip_skip"):
        set_model_settings(Path("/models/anime"), clip_skip=13)


def test_the_token_counter_reads_the_loaded_models_tokenizer(qtbot, sd1):
    with qtbot.waitSignal(sd1.tokens.counted, timeout=30000) as done:
        sd1.tokens.request("a red fox", "blurry")
        sd1.tokens.flush()
    assert (done.args[0].positive, done.args[0].negative) == ("3/75", "1/75")
