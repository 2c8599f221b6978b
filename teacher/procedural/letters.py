"""Letter counting: spell the word, walk it with a running count, check by listing positions."""

from __future__ import annotations

import random

from distill.records import Problem

SPELL = ("Let me spell it out letter by letter: {spelled}.", "Spelling the word: {spelled}.", "The letters are: {spelled}.")
WALK = (
    "Now I go through each letter and count the {q}'s:",
    "Counting {q} as I go:",
    "Walking through the letters, counting {q}:",
)
CHECK = (
    "Let me verify by listing the positions of {q}:",
    "Check another way, positions of {q}:",
    "Double-check with positions of {q}:",
)
ANSWER = (
    'The letter "{q}" appears \\boxed{{{n}}} times in "{word}".',
    'There are \\boxed{{{n}}} {q}\'s in "{word}".',
    '"{word}" contains the letter "{q}" \\boxed{{{n}}} times.',
)


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def write(problem: Problem, rng: random.Random, slip: bool) -> tuple[str, str]:
    word, q = problem.meta["word"], problem.meta["letter"]
    positions = [i + 1 for i, c in enumerate(word) if c == q]
    n = len(positions)
    # A slip skips one occurrence in the walk; the position check then catches it.
    skipped = rng.choice(positions) if slip and positions else None

    lines = [f'I need to count how many times "{q}" appears in "{word}".']
    lines.append(rng.choice(SPELL).format(spelled=", ".join(word)))
    lines.append(rng.choice(WALK).format(q=q))
    running, walk = 0, []
    for i, c in enumerate(word, start=1):
        if c == q and i != skipped:
            running += 1
            walk.append(f"{c} ({running})")
        else:
            walk.append(c)
    lines.append(" ".join(walk))
    lines.append(f"That gives {running}.")
    lines.append(rng.choice(CHECK).format(q=q))
    if positions:
        listed = ", ".join(str(p) for p in positions)
        lines.append(f"{q} is at {_plural(n, 'position', 'positions')} {listed}, which is {n}.")
    else:
        lines.append(f'No position holds "{q}", so the count is 0.')
    if skipped is not None:
        lines.append(f"Wait, that is wrong: I missed the {q} at position {skipped}. The correct count is {n}.")
    else:
        lines.append(f"Both ways give {n}.")
    return "\n".join(lines), rng.choice(ANSWER).format(q=q, n=n, word=word)
