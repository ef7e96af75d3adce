"""The timeline names the prompt of every step when prompt editing or alternation switches it."""

from __future__ import annotations

from ldm_studio.app.jobs import StepUpdate
from ldm_studio.app.prompt_switches import prompt_at, prompt_by_step
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.ui.timeline_bar import TimelineBar


def test_editing_switches_after_a1111s_end_step():
    # A1111 keeps "cat" while its 0-based step <= 3: four steps, then "dog" from step 5 (1-based)
    changes = prompt_by_step(GenerationRequest("a [cat:dog:3]", steps=6))
    assert changes == {1: "a cat", 5: "a dog"}
    assert [prompt_at(changes, step) for step in range(1, 7)] == ["a cat"] * 4 + ["a dog"] * 2


def test_alternation_and_fractions():
    changes = prompt_by_step(GenerationRequest("[a|b]", steps=4))
    assert [prompt_at(changes, step) for step in range(1, 5)] == ["a", "a", "b", "a"]
    assert prompt_by_step(GenerationRequest("[cat:dog:0.5]", steps=10)) == {1: "cat", 7: "dog"}


def test_plain_prompts_and_bad_syntax_have_no_switches():
    assert prompt_by_step(GenerationRequest("a red cat", steps=10)) == {}
    assert prompt_by_step(GenerationRequest("(a:nan) [", steps=10)) == {}


def test_the_timeline_label_says_where_the_prompt_switched(qtbot):
    bar = TimelineBar()
    qtbot.addWidget(bar)
    bar.clear()
    bar.set_prompt_changes(prompt_by_step(GenerationRequest("[cat:dog:3]", steps=6)))
    for index in range(1, 7):
        bar.add(StepUpdate(index, 6, 0.1 * index, 900.0 - index, None, None))
    assert bar.label.text().endswith("prompt “dog”")
    bar.slider.setValue(5)
    assert "prompt switched to “dog”" in bar.label.text()
    bar.slider.setValue(2)
    assert bar.label.text().endswith("prompt “cat”")
    assert "step 5: “dog”" in bar.slider.toolTip()
