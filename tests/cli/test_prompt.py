"""``ldm-studio prompt``: the parse as JSON, with the bundled CLIP tokenizer or a model's own."""

from __future__ import annotations

import json

from ldm_studio.cli import main


def run_prompt(capsys, *args: str) -> tuple[int, dict | None, str]:
    status = main(["prompt", *args])
    captured = capsys.readouterr()
    return status, json.loads(captured.out) if captured.out else None, captured.err


def test_prints_pieces_weights_chunks_schedules_and_loras(capsys):
    status, report, _ = run_prompt(
        capsys, "masterpiece, (red fox:1.2), [blurry], <lora:fox_style:0.8>, a [cat:dog:0.5]", "--steps", "10"
    )
    assert status == 0
    assert report["networks"][0] | {} == {
        "kind": "lora",
        "name": "fox_style",
        "arguments": ["0.8"],
        "tag": "<lora:fox_style:0.8>",
        "te_weight": 0.8,
        "unet_weight": 0.8,
    }
    (part,) = report["parts"]
    assert [entry["until_step"] for entry in part["schedule"]] == [5, 10]
    first = part["schedule"][0]
    assert {"text": "red fox", "weight": 1.2} in first["chunks"]
    assert {"text": "blurry", "weight": 1 / 1.1} in first["chunks"]
    assert first["text"].endswith("a cat") and part["schedule"][1]["text"].endswith("a dog")
    assert report["chunk_length"] == 75 and report["token_count"].endswith("/75")
    assert report["unsupported"] is None


def test_long_prompts_show_tokens_per_chunk(capsys):
    _, report, _ = run_prompt(capsys, " ".join(["cat"] * 80))
    entry = report["parts"][0]["schedule"][0]
    assert entry["tokens_per_chunk"] == [75, 5] and report["token_count"] == "80/150"


def test_and_is_reported_as_unsupported(capsys):
    _, report, _ = run_prompt(capsys, "a cat AND a dog")
    assert len(report["parts"]) == 2 and "AND" in report["unsupported"]


def test_the_bundled_emoji_model_counts_with_its_own_tokenizer(capsys):
    status, report, _ = run_prompt(
        capsys, "a happy (yellow:1.3) face", "--model", "resources/models/emoji-ldm"
    )
    assert status == 0 and report["chunk_length"] == 30
    assert report["parts"][0]["schedule"][0]["tokens_per_chunk"] == [4]


def test_bad_prompts_and_models_fail_with_one_line(capsys, tmp_path):
    status, report, err = run_prompt(capsys, "(a:1.2.3)")
    assert status == 1 and report is None and "not a number" in err
    status, _, err = run_prompt(capsys, "a", "--model", str(tmp_path))
    assert status == 1 and "tokenizer" in err
