"""Arithmetic: 3-digit addition and subtraction, two-digit multiplication, two-step word problems."""

from __future__ import annotations

import random

from distill.records import Problem

# How often each kind is drawn. Two-step word problems are half: they are the ones that take reasoning, and at a
# quarter the smol student saw about 22 of them in SFT and solved none of 30 held out (a third at half; README).
KINDS = {"add": 1, "sub": 1, "mul": 1, "word": 3}

# Two-step stories: (text, first operation, second operation). The answer is (a op1 b) op2 c.
STORIES = (
    ("A shop has {a} apples. It sells {b} of them and then receives {c} more. How many apples does it have now?", "-", "+"),
    ("A library has {a} books and buys {b} more. It then gives away {c}. How many books are left?", "+", "-"),
    ("Each box holds {a} pencils. A teacher buys {b} boxes and hands out {c} pencils. How many pencils remain?", "*", "-"),
    (
        "A farmer picks {a} eggs in the morning and {b} in the afternoon, "
        "then packs them all into cartons and sells {c} eggs. How many eggs does he keep?",
        "+",
        "-",
    ),
    ("A bus carries {a} people. At the first stop {b} get off, and then {c} get on. How many people are on the bus?", "-", "+"),
    ("A baker makes {a} trays of {b} cookies each and then bakes {c} more cookies. How many cookies are there?", "*", "+"),
)

ASK = ("What is {expr}?", "Compute {expr}.", "Calculate {expr}.", "{expr} = ?")


def apply(op: str, x: int, y: int) -> int:
    return {"+": x + y, "-": x - y, "*": x * y}[op]


def _story_operands(rng: random.Random, op1: str, op2: str) -> tuple[int, int, int]:
    if op1 == "*":
        a, b = rng.randint(12, 48), rng.randint(3, 19)
    else:
        a = rng.randint(120, 899)
        b = rng.randint(15, a - 10) if op1 == "-" else rng.randint(15, 499)
    first = apply(op1, a, b)
    c = rng.randint(5, first - 1) if op2 == "-" else rng.randint(5, 299)
    return a, b, c


def make(rng: random.Random) -> tuple[str, Problem]:
    kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    if kind == "word":
        index = rng.randrange(len(STORIES))
        text, op1, op2 = STORIES[index]
        a, b, c = _story_operands(rng, op1, op2)
        answer = apply(op2, apply(op1, a, b), c)
        meta = {"kind": kind, "story": index, "a": a, "b": b, "c": c, "op1": op1, "op2": op2}
        return f"word:{index}:{a}:{b}:{c}", Problem("", "arithmetic", text.format(a=a, b=b, c=c), str(answer), meta=meta)
    if kind == "mul":
        a, b, op = rng.randint(11, 99), rng.randint(11, 99), "*"
    else:
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        op = "+" if kind == "add" else "-"
        if op == "-" and b > a:
            a, b = b, a
    symbol = {"+": "+", "-": "-", "*": "×"}[op]
    question = rng.choice(ASK).format(expr=f"{a} {symbol} {b}")
    meta = {"kind": kind, "a": a, "b": b, "op": op}
    return f"{kind}:{a}:{b}", Problem("", "arithmetic", question, str(apply(op, a, b)), meta=meta)
