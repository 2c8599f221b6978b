"""Letter counting with the Python tool: the student cannot see the letters inside its tokens (it spells 0 of
100 common words), but it can copy the word and the letter into `"strawberry".count("r")`."""

from __future__ import annotations

import random

from distill.records import Problem
from distill.tools import call

ASK = (
    'Count the {q}\'s in "{word}" with Python:',
    'Python can count the "{q}" in "{word}":',
    'Let me count "{q}" in "{word}" in code:',
)
GUESS = "At a glance I see {m}; checking with Python:"
ANSWER = ('"{q}" appears \\boxed{{{n}}} times in "{word}".', "The answer is \\boxed{{{n}}}.")


def write(problem: Problem, rng: random.Random, slip: bool) -> tuple[str, str]:
    word, q = problem.meta["word"], problem.meta["letter"]
    n = word.count(q)
    check = call(f'"{word}".count("{q}")', str(n))
    if slip and n:
        # A count by eye misses one; the tool's count is the one that stands.
        lines = [GUESS.format(m=n - 1), check, f'Python counts {n}, not {n - 1}: I missed one "{q}".']
    else:
        lines = [rng.choice(ASK).format(q=q, word=word), check]
    return "\n".join(lines), rng.choice(ANSWER).format(q=q, n=n, word=word)
