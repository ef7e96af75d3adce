"""A1111's prompt editing ``[from:to:when]`` and alternation ``[a|b]``: the prompt at every step.

A1111 (``get_learned_conditioning_prompt_schedules``) parses with a lark Earley grammar. Earley is far too
slow for long prompts here (a 3,000-character prompt took two minutes), so this is a small hand-written
parser of the same language, without recursion (deep nesting cannot overflow the stack):

- ``prompt`` is text, whitespace and well-formed constructs; inside a construct nothing may be stray;
- ``(p)``, ``(p:p)``, ``[p]`` are emphasis: kept verbatim (the emphasis parser reads them later);
- ``[p:p:N]`` / ``[p:N]`` are edits, ``[p|p|...]`` alternation (empty options allowed);
- at the top level only, a bracket or colon that closes no construct is literal text;
- a ``|`` outside alternation, or a backslash at the end or before a newline, makes the whole prompt
  unparsable: A1111 then uses the text unchanged at every step, and so do we.

``N`` is lark's SIGNED_NUMBER. A1111's current scheduling (the default since 1.6): a number written with a
``.`` is a fraction of the steps, one without is a step number; ``old_scheduling`` is its legacy option
(below 1: a fraction). The step is truncated with ``int``, capped at the step count, and ignored by the
step list when below 1 (the edit then shows its "to" text from the first step).
The tests compare this parser with the lark grammar on generated prompts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ldm_studio.engine.prompts.errors import PromptError

_NUMBER = re.compile(
    r"\s*([+-]?(?:[0-9]+[eE][+-]?[0-9]+|(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+))\s*"
)
_SPECIAL = frozenset("\\[]():|")


@dataclass(frozen=True)
class ScheduledPrompt:
    """The prompt text to use up to and including step ``until_step`` (1-based, as A1111 counts)."""

    until_step: int
    text: str


@dataclass
class _Edit:
    before: list | None
    after: list
    number: str
    step: int = 0


@dataclass
class _Alternation:
    options: list[list]


@dataclass
class _Group:
    """Emphasis brackets, kept as written; a node of its own so that nesting never copies long lists."""

    nodes: list


@dataclass
class _Frame:
    start: int
    opener: str
    segments: list[list] = field(default_factory=lambda: [[]])
    separators: list[str] = field(default_factory=list)


class _Unparsable(Exception):
    pass


def prompt_schedule(
    prompt: str, steps: int, *, hires_steps: int | None = None, old_scheduling: bool = False
) -> list[ScheduledPrompt]:
    """``[(until_step, text), ...]`` for one prompt, as A1111's schedule for ``steps`` sampling steps.

    With ``hires_steps`` the schedule is for the hires-fix pass, as A1111 computes it (a fraction counts
    from 1.0 = the start of the pass, a step number from the end of the first pass).
    """
    if steps < 1 or (hires_steps is not None and hires_steps < 1):
        raise PromptError(f"A prompt schedule needs at least one step (got {steps}).")
    if hires_steps is None or old_scheduling:
        int_offset, fraction_offset, total = 0, 0.0, steps
    else:
        int_offset, fraction_offset, total = steps, 1.0, hires_steps
    try:
        tree = _parse(prompt)
    except _Unparsable:
        return [ScheduledPrompt(total, prompt)]
    switch_steps = {total}
    for node in _walk(tree):
        if isinstance(node, _Edit):
            node.step = _edit_step(node.number, total, int_offset, fraction_offset, old_scheduling)
            if node.step >= 1:
                switch_steps.add(node.step)
        elif isinstance(node, _Alternation):
            switch_steps.update(range(1, total + 1))
    return [ScheduledPrompt(step, _render(tree, step)) for step in sorted(switch_steps)]


def prompt_schedules(prompts: list[str], steps: int, **options) -> list[list[ScheduledPrompt]]:
    """:func:`prompt_schedule` for each prompt (A1111's ``get_learned_conditioning_prompt_schedules``)."""
    cache: dict[str, list[ScheduledPrompt]] = {}
    for prompt in prompts:
        if prompt not in cache:
            cache[prompt] = prompt_schedule(prompt, steps, **options)
    return [cache[prompt] for prompt in prompts]


def prompt_at_step(schedule: list[ScheduledPrompt], step: int) -> str:
    """The text in force at 1-based ``step`` (A1111's ``reconstruct_cond_batch`` rule)."""
    for entry in schedule:
        if step <= entry.until_step:
            return entry.text
    return schedule[0].text if not schedule else schedule[-1].text


def _edit_step(number: str, total: int, int_offset: int, fraction_offset: float, old: bool) -> int:
    value = float(number)
    if old:
        value = value * total if value < 1 else value
    elif "." in number:
        value = (value - fraction_offset) * total
    else:
        value = value - int_offset
    # A1111 crashes on int(inf) ("[a:b:1e999]"); an edit that far away simply never happens
    if math.isnan(value):
        return 0
    if math.isinf(value):
        return total if value > 0 else 0
    return min(total, int(value))


def _parse(prompt: str) -> list:
    """The prompt as a list of text pieces, edits and alternations; raises _Unparsable like lark."""
    memo: dict[int, tuple[list, int] | None] = {}
    top: list = []
    stack: list[_Frame] = []
    position = 0
    length = len(prompt)

    def fail_all_frames() -> int:
        for frame in stack:
            memo[frame.start] = None
        outermost = stack[0].start
        stack.clear()
        top.append(prompt[outermost])  # the opener was stray text after all
        return outermost + 1

    while True:
        if position >= length:
            if not stack:
                return top
            position = fail_all_frames()
            continue
        current = stack[-1].segments[-1] if stack else top
        char = prompt[position]
        if char not in _SPECIAL:
            end = position + 1
            while end < length and prompt[end] not in _SPECIAL:
                end += 1
            current.append(prompt[position:end])
            position = end
        elif char == "\\":
            if position + 1 >= length or prompt[position + 1] == "\n":
                raise _Unparsable
            current.append(prompt[position : position + 2])
            position += 2
        elif char in "([":
            if position in memo:
                known = memo[position]
                if known is None:
                    if stack:  # a broken construct breaks every construct around it
                        position = fail_all_frames()
                    else:
                        top.append(char)
                        position += 1
                else:
                    current.extend(known[0])
                    position = known[1]
            else:
                stack.append(_Frame(position, char))
                position += 1
        elif not stack:
            if char == "|":
                raise _Unparsable
            top.append(char)
            position += 1
        else:
            frame = stack[-1]
            outcome = _accept(frame, char)
            if outcome == "fail":
                position = fail_all_frames()
                continue
            position += 1
            if outcome == "closed":
                nodes = _close(frame, prompt)
                stack.pop()
                if nodes is None:
                    stack.append(frame)
                    position = fail_all_frames()
                    continue
                memo[frame.start] = (nodes, position)
                (stack[-1].segments[-1] if stack else top).extend(nodes)


def _accept(frame: _Frame, char: str) -> str:
    """What ``char`` (one of ``:|)]``) does to the construct being read: separate, close, or break it."""
    if frame.opener == "(":
        if char == ")":
            return "closed"
        if char == ":" and not frame.separators:
            frame.separators.append(":")
            frame.segments.append([])
            return "separated"
        return "fail"
    if char == "]":
        return "closed"
    if char in ":|":
        frame.separators.append(char)
        frame.segments.append([])
        return "separated"
    return "fail"


def _close(frame: _Frame, prompt: str) -> list | None:
    segments, separators = frame.segments, frame.separators
    if frame.opener == "(":
        nodes: list = ["(", _Group(segments[0])]
        if separators:
            nodes += [":", _Group(segments[1])]
        return [_Group([*nodes, ")"])]
    if not separators:
        return [_Group(["[", _Group(segments[0]), "]"])]
    if all(separator == "|" for separator in separators):
        return [_Alternation([segment for segment in segments])]
    if "|" in separators or len(separators) > 2:
        return None
    last = segments[-1]
    if not all(isinstance(piece, str) for piece in last):
        return None
    match = _NUMBER.fullmatch("".join(last))
    if match is None:
        return None
    before = segments[0] if len(separators) == 2 else None
    return [_Edit(before, segments[-2], match.group(1))]


def _walk(tree: list):
    pending = [tree]
    while pending:
        for node in pending.pop():
            if isinstance(node, _Edit):
                yield node
                pending.append(node.after)
                if node.before is not None:
                    pending.append(node.before)
            elif isinstance(node, _Alternation):
                yield node
                pending.extend(node.options)
            elif isinstance(node, _Group):
                pending.append(node.nodes)


def _render(tree: list, step: int) -> str:
    out: list[str] = []
    pending = [iter(tree)]
    while pending:
        node = next(pending[-1], None)
        if node is None:
            pending.pop()
        elif isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Group):
            pending.append(iter(node.nodes))
        elif isinstance(node, _Edit):
            chosen = (node.before or []) if step <= node.step else node.after
            pending.append(iter(chosen))
        else:
            pending.append(iter(node.options[(step - 1) % len(node.options)]))
    return "".join(out)
