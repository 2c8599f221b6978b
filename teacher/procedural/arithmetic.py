"""Arithmetic: column addition and subtraction with carries and borrows, partial products, and
word problems in two steps; each result is checked by the inverse operation or another split."""

from __future__ import annotations

import random

from distill.records import Problem
from distill.tasks.arithmetic import STORIES, apply

PLACES = ("ones", "tens", "hundreds", "thousands", "ten-thousands")
SYMBOL = {"+": "+", "-": "-", "*": "×"}
ANSWER = ("The answer is \\boxed{{{n}}}.", "So the result is \\boxed{{{n}}}.", "Final answer: \\boxed{{{n}}}.")
CHECK = ("Let me verify", "Check", "Verifying")


def _digits(x: int, width: int) -> list[int]:
    return [(x // 10**k) % 10 for k in range(width)]


def column_add(a: int, b: int) -> list[str]:
    width = max(len(str(a)), len(str(b)))
    da, db, carry, lines = _digits(a, width), _digits(b, width), 0, []
    for k in range(width):
        total = da[k] + db[k] + carry
        extra = f" + {carry}" if carry else ""
        note = f", write {total % 10}, carry 1" if total >= 10 else f", write {total}"
        lines.append(f"{PLACES[k].capitalize()}: {da[k]} + {db[k]}{extra} = {total}{note}.")
        carry = total // 10
    if carry:
        lines.append("Bring down the final carry 1.")
    return lines


def column_sub(a: int, b: int) -> list[str]:
    width = len(str(a))
    da, db, borrow, lines = _digits(a, width), _digits(b, width), 0, []
    for k in range(width):
        top = da[k] - borrow
        shown = f"{da[k]} - {borrow}" if borrow else f"{da[k]}"
        if top < db[k]:
            lines.append(
                f"{PLACES[k].capitalize()}: {shown} is less than {db[k]}, borrow: {top + 10} - {db[k]} = {top + 10 - db[k]}."
            )
            borrow = 1
        else:
            lines.append(f"{PLACES[k].capitalize()}: {shown} - {db[k]} = {top - db[k]}.")
            borrow = 0
    return lines


def partial_products(a: int, b: int) -> list[str]:
    # Split the factor that has a tens digit; a one-digit factor multiplies both parts.
    whole, split = (a, b) if b >= 10 else (b, a)
    tens, ones = split - split % 10, split % 10
    return [
        f"Split {split} into {tens} + {ones}.",
        f"{whole} × {tens} = {whole * tens}.",
        f"{whole} × {ones} = {whole * ones}.",
        f"Add the partial products: {whole * tens} + {whole * ones} = {a * b}.",
    ]


def work(op: str, a: int, b: int) -> list[str]:
    return {"+": column_add, "-": column_sub, "*": partial_products}[op](a, b)


def check(op: str, a: int, b: int, result: int) -> str:
    """A check of `a op b = result` by another route."""
    if op == "+":
        return f"{result} - {b} = {result - b}, which should be {a}."
    if op == "-":
        return f"{result} + {b} = {result + b}, which should be {a}."
    if b < 10:
        return f"{result} ÷ {b} = {result / b:g}, which should be {a}."
    tens, ones = a - a % 10, a % 10
    return f"the other way round, {b} × {tens} + {b} × {ones} = {b * tens} + {b * ones} = {b * a}, which should be {result}."


def _slipped(op: str, a: int, b: int) -> int:
    # A dropped carry, a missed borrow or a mis-added partial product: off by a power of ten.
    return apply(op, a, b) + random.Random(a * 1000 + b).choice((10, -10, 100))


def solve_step(op: str, a: int, b: int, rng: random.Random, slip: bool) -> tuple[list[str], int]:
    result = apply(op, a, b)
    lines = [f"Compute {a} {SYMBOL[op]} {b}."]
    lines += work(op, a, b)
    if slip:
        wrong = _slipped(op, a, b)
        lines.append(f"So {a} {SYMBOL[op]} {b} = {wrong}.")
        lines.append(f"{rng.choice(CHECK)}: " + check(op, a, b, wrong))
        lines.append(
            f"Wait, that is wrong: the check does not hold, so I slipped somewhere. Redoing it carefully gives {result}."
        )
    else:
        lines.append(f"So {a} {SYMBOL[op]} {b} = {result}.")
    lines.append(f"{rng.choice(CHECK)}: " + check(op, a, b, result) + " Correct.")
    return lines, result


def write(problem: Problem, rng: random.Random, slip: bool) -> tuple[str, str]:
    meta = problem.meta
    if meta["kind"] != "word":
        lines, result = solve_step(meta["op"], meta["a"], meta["b"], rng, slip)
        return "\n".join(lines), rng.choice(ANSWER).format(n=result)
    _, op1, op2 = STORIES[meta["story"]]
    slip_first = rng.random() < 0.5
    lines = ["This takes two steps.", "Step 1:"]
    step, first = solve_step(op1, meta["a"], meta["b"], rng, slip and slip_first)
    lines += step + ["Step 2:"]
    step, result = solve_step(op2, first, meta["c"], rng, slip and not slip_first)
    lines += step
    return "\n".join(lines), rng.choice(ANSWER).format(n=result)
