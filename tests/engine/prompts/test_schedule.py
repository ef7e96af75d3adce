"""Prompt editing and alternation against A1111: its docstring table, then lark's parse of its grammar."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldm_studio.engine.prompts import PromptError, prompt_at_step, prompt_schedule
from tests.engine.prompts.lark_reference import reference_schedule

# get_learned_conditioning_prompt_schedules([prompt], 10)[0] in A1111's docstring
A1111_DOCSTRING = [
    ("test", [(10, "test")]),
    ("a [b:3]", [(3, "a "), (10, "a b")]),
    ("a [b: 3]", [(3, "a "), (10, "a b")]),
    ("a [[[b]]:2]", [(2, "a "), (10, "a [[b]]")]),
    ("[(a:2):3]", [(3, ""), (10, "(a:2)")]),
    ("a [b : c : 1] d", [(1, "a b  d"), (10, "a  c  d")]),
    ("a[b:[c:d:2]:1]e", [(1, "abe"), (2, "ace"), (10, "ade")]),
    ("a [unbalanced", [(10, "a [unbalanced")]),
    ("a [b:.5] c", [(5, "a  c"), (10, "a b c")]),
    ("((a][:b:c [d:3]", [(3, "((a][:b:c "), (10, "((a][:b:c d")]),
    ("[a|(b:1.1)]", [(step, "a" if step % 2 else "(b:1.1)") for step in range(1, 11)]),
    ("[fe|]male", [(step, "female" if step % 2 else "male") for step in range(1, 11)]),
    ("[fe|||]male", [(step, "female" if step % 4 == 1 else "male") for step in range(1, 11)]),
]

HARD_CASES = [
    # A1111's docstring lists [[5, 'a  c'], [10, 'a {b|d{ c']] "(not handling this right now)"; its grammar,
    # run by lark 1.1.2 (A1111's pin) and 1.3, rejects the prompt, so A1111 uses it unchanged
    ("a [{b|d{:.5] c", [(10, "a [{b|d{:.5] c")]),
    ("a | b", [(10, "a | b")]),  # a bar outside alternation: the whole prompt is left as written
    ("[a:b:1.0]", [(10, "a")]),  # "1.0" has a dot: a fraction (all 10 steps)
    ("[a:b:0]", [(10, "b")]),  # below step 1: "to" from the start
    ("[a:b:-3]", [(10, "b")]),
    ("[a:b:15]", [(10, "a")]),  # capped at the step count
    ("[a:b:1e999]", [(10, "a")]),  # A1111 crashes on int(inf); never switching is what it means
    ("[a:b:c]", [(10, "[a:b:c]")]),
    ("[a:b:c:3]", [(10, "[a:b:c:3]")]),
    ("[a|b:3]", [(10, "[a|b:3]")]),
    ("x\\", [(10, "x\\")]),
    ("[a\\:b:3]", [(3, ""), (10, "a\\:b")]),
    ("[[a|b]:c:2]", [(1, "a"), (2, "b"), (3, "c"), *[(step, "c") for step in range(4, 11)]]),
]


@pytest.mark.parametrize(("prompt", "expected"), A1111_DOCSTRING + HARD_CASES)
def test_schedules_match_a1111(prompt, expected):
    assert [(entry.until_step, entry.text) for entry in prompt_schedule(prompt, 10)] == expected


def test_hires_pass_schedules_as_a1111():
    schedule = lambda prompt: [(e.until_step, e.text) for e in prompt_schedule(prompt, 10, hires_steps=10)]  # noqa: E731
    assert schedule("a [b:.5] c") == [(10, "a b c")]
    assert schedule("a [b:1.5] c") == [(5, "a  c"), (10, "a b c")]


def test_old_scheduling_reads_below_one_as_a_fraction():
    assert [e.until_step for e in prompt_schedule("[a:b:0.25]", 20, old_scheduling=True)] == [5, 20]
    assert [e.until_step for e in prompt_schedule("[a:b:1]", 20, old_scheduling=True)] == [1, 20]
    assert [e.until_step for e in prompt_schedule("[a:b:1.0]", 20)] == [20]


def test_prompt_at_step_follows_the_schedule():
    schedule = prompt_schedule("a [cat:dog:4]", 10)
    assert [prompt_at_step(schedule, step) for step in (1, 4, 5, 10)] == ["a cat", "a cat", "a dog", "a dog"]


def test_zero_steps_is_refused():
    with pytest.raises(PromptError):
        prompt_schedule("a", 0)


def test_deep_nesting_and_long_prompts_are_fast_and_do_not_recurse():
    started = time.perf_counter()
    assert prompt_schedule("[" * 20000 + "a" + "]" * 20000, 5)[-1].text.count("[") == 20000
    assert prompt_schedule("[" * 20000, 5) == prompt_schedule("[" * 20000, 5)
    nested = "[a:" * 3000 + "b" + ":2]" * 3000
    assert len(prompt_schedule(nested, 5)) == 2
    long = "masterpiece, (red fox:1.2), [blurry], [a:b:0.5] [x|y] " * 200
    assert len(prompt_schedule(long, 30)) == 30
    assert time.perf_counter() - started < 10


ALPHABET = st.sampled_from(list("ab []()::|1.5-") + ["\\", "\n", "0.5", "2", " BREAK "])


@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, max_size=14).map("".join), st.integers(min_value=1, max_value=7))
def test_same_schedules_as_a1111_grammar_under_lark(prompt, steps):
    ours = [(entry.until_step, entry.text) for entry in prompt_schedule(prompt, steps)]
    assert ours == reference_schedule(prompt, steps)
