"""Reading a model's output: the `<think>` block, the final text, and the answer inside `\\boxed{}`.

The same functions read teacher traces, the base model, the trained student and every quantized
variant, so accuracy comparisons between them are fair.
"""

from __future__ import annotations

import re

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

# Fallback for models that never learned `\boxed{}` (the base model): "the answer is 42".
_ANSWER_PHRASE = re.compile(r"answer\s*(?:is|:)\s*\**\s*\$?(-?[\d,]*\.?\d+)", re.IGNORECASE)


def split_reasoning(text: str) -> tuple[str | None, str]:
    """`(reasoning, final)`: reasoning is None unless a think block is closed."""
    if THINK_CLOSE not in text:
        return None, text
    head, _, final = text.partition(THINK_CLOSE)
    reasoning = head.split(THINK_OPEN, 1)[1] if THINK_OPEN in head else head
    return reasoning.strip(), final.strip()


def boxed_contents(text: str) -> list[str]:
    """Every `\\boxed{...}` body in order, with nested braces matched."""
    found, start = [], 0
    while (at := text.find("\\boxed{", start)) != -1:
        depth, i = 1, at + len("\\boxed{")
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth:
            break
        found.append(text[at + len("\\boxed{") : i - 1].strip())
        start = i
    return found


def extract_answer(text: str) -> str | None:
    """The final answer: the last boxed value after the think block, else an "answer is N" phrase."""
    _, final = split_reasoning(text)
    boxed = boxed_contents(final)
    if boxed:
        return boxed[-1]
    phrases = _ANSWER_PHRASE.findall(final)
    return phrases[-1].replace(",", "") if phrases else None


def think_problems(text: str) -> list[str]:
    """What is wrong with the think block: it must close exactly once and hold some reasoning."""
    problems = []
    if text.count(THINK_CLOSE) != 1 or text.count(THINK_OPEN) > 1:
        problems.append("think block not closed exactly once")
    reasoning, _ = split_reasoning(text)
    if reasoning is not None and not reasoning:
        problems.append("empty reasoning")
    return problems


def format_problems(text: str) -> list[str]:
    """Why `text` is not a well-formed trace (think block, then exactly one boxed answer); empty when it is."""
    problems = think_problems(text)
    _, final = split_reasoning(text)
    n_boxed = len(boxed_contents(final))
    if n_boxed == 0:
        problems.append("no boxed answer")
    elif n_boxed > 1:
        problems.append("more than one boxed answer")
    return problems
