"""Arithmetic with the Python tool: the trace reads the problem into expressions, one step a line (what a
two-step story asks is the reasoning), and the tool computes them. A slip is one a person makes with a
calculator: a number copied wrong or the wrong operation for a step, noticed on the next line and redone."""

from __future__ import annotations

import random

from distill.records import Problem
from distill.tasks.arithmetic import STORIES, apply
from distill.tools import call

ANSWER = ("The answer is \\boxed{{{n}}}.", "So the result is \\boxed{{{n}}}.", "Final answer: \\boxed{{{n}}}.")
ASK = ("Compute {expr} with Python:", "Let me calculate {expr} in code:", "{expr}, with Python:")
OP_WORD = {"+": "add", "-": "subtract", "*": "multiply"}
WRONG_OP = {"+": "-", "-": "+", "*": "+"}
# What each story's two steps say, in STORIES' order: the words that decide the operation.
STEPS = (
    ("it sells {b} of {a} apples", "then it receives {c} more"),
    ("it has {a} books and buys {b} more", "then it gives away {c}"),
    ("{b} boxes of {a} pencils", "then {c} are handed out"),
    ("{a} eggs in the morning and {b} in the afternoon", "then {c} are sold"),
    ("{b} of {a} people get off", "then {c} get on"),
    ("{a} trays of {b} cookies", "then {c} more cookies"),
)


def expression(op: str, a: int, b: int) -> str:
    return f"{a} {op} {b}"


def miscopied(x: int) -> int:
    """`x` with its last two digits swapped, or one more where they are equal."""
    s = str(x)
    swapped = int(s[:-2] + s[-1] + s[-2])
    return swapped if swapped != x else x + 1


def bare(problem: Problem, rng: random.Random, slip: bool) -> list[str]:
    a, b, op = problem.meta["a"], problem.meta["b"], problem.meta["op"]
    exact = expression(op, a, b)
    lines = [rng.choice(ASK).format(expr=exact)]
    if slip:
        typed = miscopied(b)
        typo = expression(op, a, typed)
        lines += [call(typo, str(apply(op, a, typed))), f"Wait, I typed {typo}, not {exact}. Again:"]
    return [*lines, call(exact, str(apply(op, a, b)))]


def story_step(k: int, what: str, op: str, x: int, y: int, slip: bool) -> tuple[list[str], int]:
    said = WRONG_OP[op] if slip else op
    lines = [f"Step {k}: {what}, so I {OP_WORD[said]}."]
    if slip:
        lines += [call(expression(said, x, y), str(apply(said, x, y))), f"Wait, {what}: I should {OP_WORD[op]}."]
    result = apply(op, x, y)
    return [*lines, call(expression(op, x, y), str(result))], result


def story(problem: Problem, rng: random.Random, slip: bool) -> list[str]:
    meta = problem.meta
    _, op1, op2 = STORIES[meta["story"]]
    first_what, second_what = (s.format(**meta) for s in STEPS[meta["story"]])
    slip_first = rng.random() < 0.5
    first_lines, first = story_step(1, first_what, op1, meta["a"], meta["b"], slip and slip_first)
    second_lines, _ = story_step(2, second_what, op2, first, meta["c"], slip and not slip_first)
    return [*first_lines, *second_lines]


def write(problem: Problem, rng: random.Random, slip: bool) -> tuple[str, str]:
    lines = story(problem, rng, slip) if problem.meta["kind"] == "word" else bare(problem, rng, slip)
    return "\n".join(lines), rng.choice(ANSWER).format(n=problem.answer)
