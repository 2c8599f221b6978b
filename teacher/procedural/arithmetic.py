"""Arithmetic by the column method and partial products, one digit fact per line: a small student can
learn each line, and a trace costs few tokens. A slip is local, as a person's is: a forgotten carry or
borrow, or a misadded partial product, noticed on the next line and put right."""

from __future__ import annotations

import random

from distill.records import Problem
from distill.tasks.arithmetic import STORIES, apply

SYMBOL = {"+": "+", "-": "-", "*": "×"}
ANSWER = ("The answer is \\boxed{{{n}}}.", "So the result is \\boxed{{{n}}}.", "Final answer: \\boxed{{{n}}}.")


def _digits(x: int, width: int) -> list[int]:
    return [(x // 10**k) % 10 for k in range(width)]


def column_add(a: int, b: int, slip: bool) -> list[str]:
    width = max(len(str(a)), len(str(b)))
    da, db, carry, lines = _digits(a, width), _digits(b, width), 0, []
    for k in range(width):
        total = da[k] + db[k] + carry
        if slip and carry:
            forgot = da[k] + db[k]
            lines.append(f"{da[k]} + {db[k]} = {forgot}. Wait, I forgot the carry: {da[k]} + {db[k]} + 1 = {total}.")
            slip = False
        line = f"{da[k]} + {db[k]}{' + 1' if carry else ''} = {total}"
        lines.append(f"{line}, write {total % 10}, carry 1." if total >= 10 else f"{line}, write {total}.")
        carry = total // 10
    if carry:
        lines.append("Write the last carry 1.")
    return lines


def column_sub(a: int, b: int, slip: bool) -> list[str]:
    width = len(str(a))
    da, db, borrow, lines = _digits(a, width), _digits(b, width), 0, []
    for k in range(width):
        top = da[k] - borrow
        shown = f"{da[k]} - 1" if borrow else f"{da[k]}"
        if slip and borrow:
            lines.append(f"{da[k]} - {db[k]} ... wait, I borrowed from this column, so it is {shown}.")
            slip = False
        if top < db[k]:
            lines.append(f"{shown} is less than {db[k]}, borrow: {top + 10} - {db[k]} = {top + 10 - db[k]}.")
            borrow = 1
        else:
            lines.append(f"{shown} - {db[k]} = {top - db[k]}.")
            borrow = 0
    return lines


def times_digit(whole: int, digit: int, slip: bool) -> tuple[str, int]:
    """`67 × 4 = 60 × 4 + 7 × 4 = 240 + 28 = 268`: two one-digit facts and an easy sum."""
    tens, ones = whole - whole % 10, whole % 10
    result = whole * digit
    if digit == 1 or not ones:
        return f"{whole} × {digit} = {result}.", result
    line = f"{whole} × {digit} = {tens} × {digit} + {ones} × {digit} = {tens * digit} + {ones * digit} = "
    if slip:
        return line + f"{result + 10}. Wait, {tens * digit} + {ones * digit} is {result}, not {result + 10}.", result
    return line + f"{result}.", result


def partial_products(a: int, b: int, slip: bool) -> list[str]:
    if min(a, b) < 10:
        return [times_digit(max(a, b), min(a, b), slip)[0]]
    tens, ones = b // 10, b % 10
    slip_tens = slip and random.Random(a * 1000 + b).random() < 0.5
    line, by_tens = times_digit(a, tens, slip_tens)
    lines = [f"{a} × {b} = {a} × {tens * 10} + {a} × {ones}.", f"{line} So {a} × {tens * 10} = {by_tens * 10}."]
    if ones:
        lines.append(times_digit(a, ones, slip and not slip_tens)[0])
    lines.append(f"{by_tens * 10} + {a * ones} = {a * b}.")
    return lines


def solve_step(op: str, a: int, b: int, rng: random.Random, slip: bool) -> tuple[list[str], int]:
    work = {"+": column_add, "-": column_sub, "*": partial_products}[op]
    result = apply(op, a, b)
    lines = [f"{a} {SYMBOL[op]} {b}:", *work(a, b, slip)]
    lines.append(f"So {a} {SYMBOL[op]} {b} = {result}.")
    return lines, result


def write(problem: Problem, rng: random.Random, slip: bool) -> tuple[str, str]:
    meta = problem.meta
    if meta["kind"] != "word":
        lines, result = solve_step(meta["op"], meta["a"], meta["b"], rng, slip)
        return "\n".join(lines), rng.choice(ANSWER).format(n=result)
    _, op1, op2 = STORIES[meta["story"]]
    slip_first = rng.random() < 0.5
    first_lines, first = solve_step(op1, meta["a"], meta["b"], rng, slip and slip_first)
    second_lines, result = solve_step(op2, first, meta["c"], rng, slip and not slip_first)
    return "\n".join(["Step 1.", *first_lines, "Step 2.", *second_lines]), rng.choice(ANSWER).format(n=result)
