"""Extra-network tags and AND, as A1111's extra_networks.parse_prompt and get_multicond_prompt_list."""

from __future__ import annotations

import pytest

from ldm_studio.engine.prompts import (
    PromptError,
    UnsupportedPrompt,
    extract_extra_networks,
    parse_prompt,
    refuse_composable,
    split_composable,
)


def test_lora_tags_are_removed_with_a1111_weights():
    text, tags = extract_extra_networks(
        "a fox <lora:fox_style:0.8>, <lora:b:0.5:0.25> <lyco:c> <hypernet:h:0.3>"
    )
    assert text == "a fox ,   "
    assert [(t.kind, t.name, t.te_weight, t.unet_weight) for t in tags[:3]] == [
        ("lora", "fox_style", 0.8, 0.8),
        ("lora", "b", 0.5, 0.25),
        ("lyco", "c", 1.0, 1.0),
    ]
    assert tags[3].kind == "hypernet" and tags[3].weight == 0.3


def test_named_lora_arguments_override_positional_ones():
    (tag,) = extract_extra_networks("<lora:x:0.5:unet=0.1:te=0.7>")[1]
    assert (tag.te_weight, tag.unet_weight) == (0.7, 0.1)


def test_unknown_tags_are_removed_and_unterminated_ones_stay_text():
    assert extract_extra_networks("a <foo:bar> b")[0] == "a  b"
    assert extract_extra_networks("a <lora:fox")[0] == "a <lora:fox"
    assert extract_extra_networks("a <lora:fox")[1] == []


@pytest.mark.parametrize("weight", ["abc", "nan", "inf", "1e999"])
def test_bad_lora_weights_are_refused_in_a_sentence(weight):
    (tag,) = extract_extra_networks(f"<lora:x:{weight}>")[1]
    with pytest.raises(PromptError):
        tag.te_weight  # noqa: B018


def test_and_splits_on_the_whole_word_with_weights():
    parts = split_composable("a cat:1.2 AND a dog AND ANDROID AND x : -0.5")
    assert [(p.text, p.weight) for p in parts] == [
        ("a cat", 1.2),
        (" a dog", 1.0),
        (" ANDROID", 1.0),
        (" x", -0.5),
    ]
    assert [(p.text, p.weight) for p in split_composable("band and brand")] == [("band and brand", 1.0)]


def test_composable_prompts_are_refused_with_a_sentence():
    refuse_composable(split_composable("a plain prompt"))
    with pytest.raises(UnsupportedPrompt, match="AND"):
        refuse_composable(split_composable("a AND b"))
    with pytest.raises(UnsupportedPrompt, match="1.2"):
        refuse_composable(split_composable("a cat:1.2"))


def test_negative_prompts_keep_tags_and_and_as_text():
    parsed = parse_prompt("ugly <lora:x:1> AND bad", 10, negative=True)
    assert parsed.networks == () and len(parsed.parts) == 1 and parsed.unsupported is None
    assert parsed.texts == ["ugly <lora:x:1> AND bad"]


def test_parsed_prompt_lists_each_text_to_encode_once():
    parsed = parse_prompt("<lora:a:1>[cat|dog] [x:y:0.5]", 4)
    assert parsed.texts == ["cat x", "dog x", "cat y", "dog y"]
    assert [entry.until_step for entry in parsed.parts[0].schedule] == [1, 2, 3, 4]
