"""Letter counting: spell the word, then walk the spelling with a running count of the letter."""

from __future__ import annotations

import random

from distill.records import Problem

SPELL = ('Spell "{word}": {spelled}', '"{word}" letter by letter: {spelled}', 'The letters of "{word}": {spelled}')
WALK = ("Count the {q}'s: {walk}", "Mark each {q}: {walk}", "Go through and count {q}: {walk}")
ANSWER = ('"{q}" appears \\boxed{{{n}}} times in "{word}".', "The answer is \\boxed{{{n}}}.")


def walk(word: str, q: str, skipped: int | None = None) -> tuple[str, int]:
    """`"s t r(1) a w b e r(2) r(3) y"` and its count: copying the spelling while counting is easy once it is spelled."""
    count, out = 0, []
    for i, c in enumerate(word):
        if c == q and i != skipped:
            count += 1
            out.append(f"{c}({count})")
        else:
            out.append(c)
    return " ".join(out), count


def write(problem: Problem, rng: random.Random, slip: bool) -> tuple[str, str]:
    word, q = problem.meta["word"], problem.meta["letter"]
    positions = [i for i, c in enumerate(word) if c == q]
    lines = [rng.choice(SPELL).format(word=word, spelled=" ".join(word))]
    if slip and positions:
        # A slip passes over one occurrence; going through the letters a second time catches it.
        missed, n = walk(word, q, skipped=rng.choice(positions))
        lines.append(rng.choice(WALK).format(q=q, walk=missed))
        lines.append(f"That gives {n}. Wait, that is wrong: I passed over a {q}. Again: {walk(word, q)[0]}")
    else:
        lines.append(rng.choice(WALK).format(q=q, walk=walk(word, q)[0]))
    n = len(positions)
    lines.append(f"Total: {n}.")
    return "\n".join(lines), rng.choice(ANSWER).format(q=q, n=n, word=word)
