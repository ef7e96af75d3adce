"""A1111's prompt-editing grammar run by lark's Earley parser: the reference our parser is compared with.

The grammar transcribes the one in AUTOMATIC1111's ``modules/prompt_parser.py`` (the language is the
specification). Only tests import this module; lark is in the ``test`` extra.
"""

from __future__ import annotations

import lark

GRAMMAR = r"""
!start: (prompt | /[][():]/+)*
prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)*
!emphasized: "(" prompt ")"
        | "(" prompt ":" prompt ")"
        | "[" prompt "]"
scheduled: "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
alternate: "[" prompt ("|" [prompt])+ "]"
WHITESPACE: /\s+/
plain: /([^\\\[\]():|]|\\.)+/
%import common.SIGNED_NUMBER -> NUMBER
"""

_PARSER = lark.Lark(GRAMMAR)


def reference_schedule(prompt: str, steps: int) -> list[tuple[int, str]]:
    """A1111's default scheduling (no hires pass), from lark's parse tree."""
    try:
        tree = _PARSER.parse(prompt)
    except lark.exceptions.LarkError:
        return [(steps, prompt)]
    switch = {steps}
    when: dict[int, int] = {}
    for node in tree.iter_subtrees():
        if node.data == "scheduled":
            number = str(node.children[-2])
            value = float(number) * steps if "." in number else float(number)
            when[id(node)] = min(steps, int(value))
            if when[id(node)] >= 1:
                switch.add(when[id(node)])
        elif node.data == "alternate":
            switch.update(range(1, steps + 1))

    def render(node, step: int) -> str:
        if isinstance(node, lark.Token):
            return str(node)
        if node is None:
            return ""
        if node.data == "scheduled":
            before, after = node.children[0], node.children[1]
            return render(before, step) if step <= when[id(node)] else render(after, step)
        if node.data == "alternate":
            option = node.children[(step - 1) % len(node.children)]
            return render(option, step)
        return "".join(render(child, step) for child in node.children)

    return [(step, render(tree, step)) for step in sorted(switch)]
