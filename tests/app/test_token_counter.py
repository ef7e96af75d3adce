"""The token counter service: the model's tokenizer read once off the GUI thread, counts as A1111's."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldm_studio.app.network_entries import NetworkEntry
from ldm_studio.app.token_counter import TokenCounter
from ldm_studio.paths import resource

SD1_TOKENIZER = str(resource("configs", "sd1", "tokenizer"))  # what a single-file SD 1.5 reads with
BUNDLED_TOKENIZER = str(resource("models", "emoji-ldm", "tokenizer"))


@pytest.fixture
def counter(qtbot):
    service = TokenCounter(debounce_ms=30)
    yield service
    service.shutdown()


def count(qtbot, counter: TokenCounter, prompt: str, negative: str = ""):
    with qtbot.waitSignal(counter.counted, timeout=30000) as done:
        counter.request(prompt, negative)
        counter.flush()
    return done.args[0]


def test_a_single_file_checkpoint_counts_with_the_shipped_clip_vocabulary(qtbot, counter):
    counter.set_model(SD1_TOKENIZER, "sd1")
    counts = count(qtbot, counter, "a red fox, <lora:fox_style:0.8>", "blurry, ugly")
    # "a", "red", "fox", "," — the tag takes no tokens; "blurry", ",", "ugly"
    assert (counts.positive, counts.negative, counts.positive_chunks) == ("4/75", "3/75", 1)
    long = count(qtbot, counter, "cat " * 80)
    assert (long.positive, long.positive_chunks) == ("80/150", 2)


def test_the_bundled_model_counts_with_its_own_tokenizer_and_window(qtbot, counter):
    counter.set_model(BUNDLED_TOKENIZER, "ldm-studio")
    assert count(qtbot, counter, "red heart").positive == "2/30"  # MiniLM's 32-token window


def test_an_embedding_counts_its_vectors_when_the_model_can_use_it(qtbot, counter):
    counter.set_model(SD1_TOKENIZER, "sd1")
    plain = count(qtbot, counter, "a red fox bad-hands").positive
    counter.set_embeddings([NetworkEntry("embedding", "bad-hands", Path("x"), family="sd1", vector_count=5)])
    assert (plain, count(qtbot, counter, "a red fox bad-hands").positive) == ("6/75", "8/75")
    counter.set_embeddings([NetworkEntry("embedding", "bad-hands", Path("x"), family="sdxl", vector_count=5)])
    assert count(qtbot, counter, "a red fox bad-hands").positive == "6/75"


def test_typing_fast_counts_once_with_the_latest_text(qtbot):
    counter = TokenCounter(debounce_ms=200)
    counter.set_model(SD1_TOKENIZER, "sd1")
    seen = []
    counter.counted.connect(seen.append)
    try:
        with qtbot.waitSignal(counter.counted, timeout=30000):
            counter.request("a", "")
            counter.request("a red", "")
            counter.request("a red fox", "")
        qtbot.wait(300)
        assert [counts.positive for counts in seen] == ["3/75"]
    finally:
        counter.shutdown()


def test_without_a_model_or_with_an_unreadable_tokenizer_there_is_no_count(qtbot, counter, tmp_path):
    assert count(qtbot, counter, "a red fox").positive == ""
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "tokenizer_config.json").write_text("{not json", encoding="utf-8")
    with qtbot.waitSignal(counter.unavailable, timeout=30000) as why:
        counter.set_model(str(tmp_path / "tokenizer"), "sd1")
    assert "token counter" in why.args[0]
    assert count(qtbot, counter, "a red fox").positive == ""


def test_the_worker_hands_over_a_diffusers_folders_own_tokenizer(qtbot, counter, tiny_sd_folder):
    from ldm_studio.app.backend import TorchBackend

    backend = TorchBackend()
    try:
        summary = backend.load(tiny_sd_folder, "cpu", "float32")
    finally:
        backend.unload()
    assert Path(summary.tokenizer_path) == tiny_sd_folder / "tokenizer"
    counter.set_model(summary.tokenizer_path, summary.family)
    assert count(qtbot, counter, "ab").positive == "2/14"  # one token a character; a 16-token window
