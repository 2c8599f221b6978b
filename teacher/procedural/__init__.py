"""A teacher that solves each built-in problem exactly and writes an o1-style trace.

Each trace reads the problem into a short program for the Python tool (`distill.tools`), one step a line, in
as few tokens as the method allows (a CPU student pays for every one), then answers in `\\boxed{}`. Wording is
drawn from several phrasings so a student learns the method, not a template. With probability `slip_rate` the
trace slips the way a person at a calculator does (a count by eye, a number typed wrong, the wrong operation
for a step), notices and puts it right.
"""

from __future__ import annotations

import random

from distill.records import Problem
from teacher.procedural import arithmetic, letters

WRITERS = {"letters": letters.write, "arithmetic": arithmetic.write}


def solve(problem: Problem, rng: random.Random, slip_rate: float) -> tuple[str, str]:
    """`(reasoning, answer_text)` for one built-in problem."""
    if problem.family not in WRITERS:
        raise ValueError(
            f"the procedural teacher only solves the built-in families {sorted(WRITERS)}, "
            f"not {problem.family!r} (problem {problem.id}); use a model backend for other data"
        )
    return WRITERS[problem.family](problem, rng, slip=rng.random() < slip_rate)
