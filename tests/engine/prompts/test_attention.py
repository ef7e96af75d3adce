"""Emphasis parsing against A1111's parse_prompt_attention: its docstring examples first, then edge cases."""

from __future__ import annotations

import pytest

from ldm_studio.engine.prompts import PromptError, emphasis_spans, parse_prompt_attention

# (prompt, A1111's documented result)
A1111_DOCSTRING = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [
            ("a ", 1.0),
            ("house", 1.5730000000000004),
            (" ", 1.1),
            ("on", 1.0),
            (" a ", 1.1),
            ("hill", 0.55),
            (", sun, ", 1.1),
            ("sky", 1.4641000000000006),
            (".", 1.1),
        ],
    ),
]

# behaviour read from A1111's token loop, one quirk per row
EDGE_CASES = [
    ("", [("", 1.0)]),
    ("[blurry]", [("blurry", 1 / 1.1)]),
    ("((a))", [("a", 1.1 * 1.1)]),
    ("[[a]]", [("a", (1 / 1.1) * (1 / 1.1))]),
    ("(a:1.5)", [("a", 1.5)]),
    ("(a: 1.5 )", [("a", 1.5)]),
    ("((a:2):0.5)", [("a", 1.0)]),
    ("(a:-1)", [("a", -1.0)]),
    ("a)b]c", [("a)b]c", 1.0)]),  # stray closers are text
    ("a:1.5)", [("a:1.5)", 1.0)]),  # a weight with no open bracket is text
    ("(a:1e3)", [("a:1e3", 1.1)]),  # only digits and dots make a weight
    ("a\\b", [("ab", 1.0)]),  # a lone backslash is dropped
    ("a\\\\b", [("a\\b", 1.0)]),
    ("[a", [("a", 1 / 1.1)]),
    ("([a", [("a", 1.1 / 1.1)]),  # unclosed: round brackets close first, then square
    ("a BREAK b", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
    ("BREAKING news", [("BREAKING news", 1.0)]),
    ("(a BREAK b)", [("a", 1.1), ("BREAK", -1.1), ("b", 1.1)]),  # inside brackets it is a weighted word
    ("(red fox:1.2)(red fox:1.2)", [("red foxred fox", 1.2)]),
]


def as_pairs(prompt: str) -> list[tuple[str, float]]:
    return [(piece.text, piece.weight) for piece in parse_prompt_attention(prompt)]


@pytest.mark.parametrize(("prompt", "expected"), A1111_DOCSTRING + EDGE_CASES)
def test_weights_match_a1111(prompt, expected):
    assert as_pairs(prompt) == expected


def test_break_marker_is_a_break_only_outside_brackets():
    assert [piece.is_break for piece in parse_prompt_attention("a BREAK b")] == [False, True, False]
    assert not any(piece.is_break for piece in parse_prompt_attention("(a BREAK b)"))


@pytest.mark.parametrize(
    "prompt", ["(a:1.2.3)", "(a:.)", "(a:" + "9" * 400 + ")", "(((a:0):" + "9" * 400 + "))"]
)
def test_weights_a1111_crashes_or_poisons_on_are_refused_in_a_sentence(prompt):
    with pytest.raises(PromptError) as caught:
        parse_prompt_attention(prompt)
    assert str(caught.value).endswith(".")


def test_highlight_spans_point_at_the_weighted_characters():
    prompt = "masterpiece, (red fox:1.2), [blurry] \\(x\\)"
    spans = emphasis_spans(prompt)
    assert [(prompt[span.start : span.end], span.weight) for span in spans] == [
        ("red fox", 1.2),
        ("blurry", 1 / 1.1),
    ]


def test_highlight_spans_never_raise_on_bad_weights():
    spans = emphasis_spans("(a:1.2.3) (b)")
    assert [span.weight for span in spans] == [1.1]


def test_the_text_toolkit_imports_neither_torch_nor_qt():
    import subprocess
    import sys

    code = "import sys, ldm_studio.engine.prompts; print('torch' in sys.modules, 'PySide6' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
