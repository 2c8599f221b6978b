"""Letter counting in English words ("How many r's are in strawberry?").

Words come from the `english-words` package (Webster's 2nd and GCIDE lists, both), 5 to 13 letters.
The letter asked about is a repeated letter, a single one, or one that does not occur.
"""

from __future__ import annotations

import random
import string
from functools import cache

from distill.records import Problem

MIN_LEN, MAX_LEN = 5, 13

QUESTIONS = (
    'How many times does the letter "{letter}" appear in the word "{word}"?',
    'How many {letter}\'s are in "{word}"?',
    'Count the letter "{letter}" in the word "{word}".',
    'In the word "{word}", how many times does "{letter}" occur?',
)


@cache
def words() -> tuple[str, ...]:
    """Common-enough English words: in both dictionaries, lowercase letters only, 5-13 long."""
    from english_words import get_english_words_set

    both = get_english_words_set(["web2"], lower=True, alpha=True) & get_english_words_set(["gcide"], lower=True, alpha=True)
    return tuple(sorted(w for w in both if MIN_LEN <= len(w) <= MAX_LEN and w.isascii()))


def make(rng: random.Random) -> tuple[str, Problem]:
    word = rng.choice(words())
    present = sorted(set(word))
    repeated = [c for c in present if word.count(c) > 1]
    roll = rng.random()
    if roll < 0.25:
        letter = rng.choice([c for c in string.ascii_lowercase if c not in word])
    elif roll < 0.6 and repeated:
        letter = rng.choice(repeated)
    else:
        letter = rng.choice(present)
    question = rng.choice(QUESTIONS).format(letter=letter, word=word)
    problem = Problem(
        id="",
        family="letters",
        question=question,
        answer=str(word.count(letter)),
        meta={"word": word, "letter": letter},
    )
    return word, problem
