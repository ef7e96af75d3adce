"""Where a prompt changes during sampling (A1111 prompt editing and alternation), for the timeline.

Pure text work on the request (``engine.prompts`` imports no torch): the timeline can name, for every
step, the prompt text the model read there, without asking the worker.
"""

from __future__ import annotations

from ldm_studio.engine.prompts import PromptError, parse_prompt
from ldm_studio.engine.request import GenerationRequest


def prompt_by_step(request: GenerationRequest) -> dict[int, str]:
    """1-based step → the positive text in force from that step on, for each step where it changes.

    Empty for a prompt without editing or alternation. A1111 keeps an entry while its 0-based step is
    <= the entry's end, so the text after an entry ending at ``e`` starts at 1-based step ``e + 2``.
    """
    try:
        parsed = parse_prompt(request.prompt, request.steps)
    except PromptError:
        return {}
    if len(parsed.parts) != 1:
        return {}
    schedule = parsed.parts[0].schedule
    if len(schedule) < 2:
        return {}
    changes = {1: schedule[0].text.strip()}
    for previous, entry in zip(schedule, schedule[1:], strict=False):
        step = previous.until_step + 2
        if step <= request.steps and entry.text != previous.text:
            changes[step] = entry.text.strip()
    return changes if len(changes) > 1 else {}


def prompt_at(changes: dict[int, str], step: int) -> str | None:
    """The text in force at 1-based ``step`` according to :func:`prompt_by_step`'s changes."""
    current = None
    for start in sorted(changes):
        if start > step:
            break
        current = changes[start]
    return current
