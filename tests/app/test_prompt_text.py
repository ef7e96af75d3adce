"""Prompt text for the prompt box: LoRA tags read and rewritten, highlighting, the AND warning."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ldm_studio.app.prompt_text import (
    highlights,
    insertion,
    lora_tag,
    loras_in,
    prompt_warning,
    removal_range,
    reweighted,
)

PROMPT = "masterpiece, (red fox:1.2), [blurry], <lora:fox_style:0.8>, <lyco:ink:0.5:0.7>, embedding-name"


def test_lora_tags_are_read_with_their_weights_and_places():
    tags = loras_in(PROMPT)
    assert [(tag.name, tag.weight, tag.unet_weight) for tag in tags] == [
        ("fox_style", 0.8, None),
        ("ink", 0.5, 0.7),
    ]
    assert [PROMPT[tag.start : tag.end] for tag in tags] == ["<lora:fox_style:0.8>", "<lyco:ink:0.5:0.7>"]
    assert loras_in("<lora:plain>")[0].weight == 1.0
    # unreadable weights count as 1 (the engine refuses them in words); an unfinished tag is text
    odd = loras_in("<lora:odd:nan> <lora:broken:abc> <lora:")
    assert [(tag.name, tag.weight) for tag in odd] == [("odd", 1.0), ("broken", 1.0)]


def test_reweighting_keeps_the_name_and_moves_a_separate_unet_weight_along():
    fox, ink = loras_in(PROMPT)
    assert reweighted(fox, 0.55) == "<lora:fox_style:0.55>"
    assert reweighted(ink, 1.0) == "<lora:ink:1:1.2>"  # the UNet weight keeps its +0.2
    assert reweighted(fox, 99) == "<lora:fox_style:3>"  # clamped to what the slider box allows


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a cat, <lora:x:1>, a hat", "a cat, a hat"),
        ("a cat, <lora:x:1>", "a cat"),
        ("<lora:x:1>, a cat", "a cat"),
        ("<lora:x:1>", ""),
        ("a cat <lora:x:1> a hat", "a cat a hat"),
    ],
)
def test_removing_a_tag_takes_one_separator_with_it(prompt, expected):
    start, end = removal_range(prompt, loras_in(prompt)[0])
    assert prompt[:start] + prompt[end:] == expected


@pytest.mark.parametrize(
    ("prompt", "cursor", "expected"),
    [
        ("", 0, "<lora:x:1>"),
        ("a cat", 5, "a cat, <lora:x:1>"),
        ("a cat, ", 7, "a cat, <lora:x:1>"),
        ("a cat   ", 8, "a cat, <lora:x:1>"),
        ("a cat, a hat", 0, "<lora:x:1>, a cat, a hat"),
    ],
)
def test_insertion_adds_commas_as_a_person_would(prompt, cursor, expected):
    position, text = insertion(prompt, cursor, lora_tag("x", 1.0))
    assert prompt[:position] + text + prompt[cursor:] == expected


def test_highlights_mark_emphasis_and_tags():
    spans = highlights(PROMPT)
    marked = [(PROMPT[span.start : span.end], span.kind) for span in spans]
    assert ("red fox", "stronger") in marked
    assert ("blurry", "weaker") in marked
    assert ("<lora:fox_style:0.8>", "network") in marked
    assert not any(kind != "network" and "lora" in text for text, kind in marked)


def test_and_is_warned_about_before_generate_and_lowercase_and_is_a_word():
    warning = prompt_warning("a red fox AND a blue bird")
    assert warning is not None and "AND" in warning and "not supported" in warning
    assert prompt_warning("a red fox and a blue bird") is None
    assert prompt_warning("a fox <lora:x:0.5>") is None  # a tag's ':0.5' is not an AND weight
    assert "composable" in prompt_warning("a red fox:1.5")


def test_prompt_text_imports_neither_torch_nor_qt():
    code = (
        "import sys, ldm_studio.app.prompt_text, ldm_studio.app.network_entries, "
        "ldm_studio.app.network_resolution; "
        "print(sorted(m for m in ('torch', 'PySide6', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
