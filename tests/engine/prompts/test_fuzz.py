"""Bad input never crashes: hypothesis feeds the whole text path (tags, AND, schedules, emphasis, chunks)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldm_studio.engine.prompts import (
    PromptError,
    count_tokens,
    emphasis_spans,
    parse_prompt,
    parse_prompt_attention,
    tokenize_prompt,
)
from tests.engine.prompts.tiny_text import clip_tokenizer_77

SYNTAX_HEAVY = st.lists(
    st.sampled_from([*"ab ,()[]:|<>\\\n.-e0123456789", " BREAK ", " AND ", "<lora:", "nan", "inf"]),
    max_size=40,
).map("".join)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def chars(tmp_path_factory):
    return clip_tokenizer_77(tmp_path_factory.mktemp("tokenizer"))


def _read_everything(prompt: str, tokenizer) -> None:
    try:
        parsed = parse_prompt(prompt, 7)
        for text in parsed.texts:
            for piece in parse_prompt_attention(text):
                if not piece.is_break:
                    assert math.isfinite(piece.weight)
            tokenize_prompt(tokenizer, text)
        for tag in parsed.networks:
            tag.te_weight, tag.unet_weight  # noqa: B018
    except PromptError as error:
        assert str(error)
    count_tokens(tokenizer, prompt, steps=7)  # the counter never raises
    emphasis_spans(prompt)


@FUZZ
@given(st.one_of(SYNTAX_HEAVY, st.text(), st.binary().map(lambda raw: raw.decode("utf-8", "replace"))))
def test_any_text_raises_nothing_but_prompt_error(chars, prompt):
    _read_everything(prompt, chars)


@pytest.mark.parametrize(
    "prompt",
    [
        "x" * 10_000,
        "(" * 5000 + "deep" + ")" * 5000,
        "[" * 10_000,
        "<lora:" * 2000,
        "<lora:a:1e308> <lora:b:nan> <lora:c:inf> (a:1e308) [a:b:1e308]",
        "(word:" + "9" * 500 + ")",
    ],
)
def test_hostile_prompts_are_read_or_refused(chars, prompt):
    _read_everything(prompt, chars)


WORD = st.text(alphabet="abcdefgh ,", min_size=1, max_size=6)


@st.composite
def emphasised(draw, depth=0):
    """(prompt, the text A1111's parser leaves once the syntax is gone)."""
    kind = draw(
        st.sampled_from(
            ["word", "word", "round", "square", "weight", "escape", "seq"] if depth < 4 else ["word"]
        )
    )
    if kind == "word":
        word = draw(WORD)
        return word, word
    if kind == "escape":
        char = draw(st.sampled_from("()[]"))
        return "\\" + char, char
    if kind == "seq":
        parts = draw(st.lists(emphasised(depth + 1), min_size=1, max_size=3))
        return "".join(p for p, _ in parts), "".join(t for _, t in parts)
    inner, text = draw(emphasised(depth + 1))
    if kind == "round":
        return f"({inner})", text
    if kind == "square":
        return f"[{inner}]", text
    weight = draw(st.floats(min_value=0.01, max_value=3).map(lambda w: round(w, 3)))
    return f"({inner}:{weight})", text


@settings(max_examples=300, deadline=None)
@given(emphasised())
def test_pieces_concatenate_to_the_prompt_without_its_syntax(case):
    prompt, plain = case
    pieces = parse_prompt_attention(prompt)
    assert "".join(piece.text for piece in pieces) == plain
    assert all(math.isfinite(piece.weight) and piece.weight > 0 for piece in pieces)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcdefgh ,.!", min_size=1, max_size=20))
def test_weight_one_parses_as_the_plain_word(word):
    assert parse_prompt_attention(f"({word}:1.0)") == parse_prompt_attention(word)
