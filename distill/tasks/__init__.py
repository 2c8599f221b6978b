"""Built-in families of checkable problems, with seeded, disjoint train and eval splits.

A family is a generator `rng -> (split key, Problem)` plus the name of the verifier that scores its
answers. Splits are decided by a stable hash of each problem's *split key* (the word for letter
counting, the operands for arithmetic), so no held-out word or sum is ever seen in training,
whatever the seed or the sizes asked for.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from distill.records import Problem
from distill.tasks import arithmetic, letters

SPLITS = ("train", "eval")


@dataclass(frozen=True)
class Family:
    name: str
    make: Callable[[random.Random], tuple[str, Problem]]
    verifier: str


FAMILIES: dict[str, Family] = {
    "letters": Family("letters", letters.make, verifier="exact"),
    "arithmetic": Family("arithmetic", arithmetic.make, verifier="math"),
}


def split_of(key: str, eval_share: float) -> str:
    """Which split a split key belongs to; stable across runs, machines and Python versions."""
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return "eval" if bucket < eval_share else "train"


def check(families: list[str]) -> None:
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"tasks.families: unknown task families {unknown}; built-in families are {sorted(FAMILIES)}")


def make_problems(families: list[str], n: int, split: str, seed: int, eval_share: float = 0.2) -> list[Problem]:
    """`n` distinct problems per family for one split."""
    check(families)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    problems: list[Problem] = []
    for family in families:
        rng = random.Random(f"{seed}:{family}:{split}")
        seen: set[str] = set()
        attempts = 0
        while len(seen) < n:
            attempts += 1
            if attempts > 200 * n + 1000:
                raise RuntimeError(f"family {family!r} could only make {len(seen)} distinct {split} problems of {n}")
            key, problem = FAMILIES[family].make(rng)
            if split_of(key, eval_share) != split or problem.question in seen:
                continue
            seen.add(problem.question)
            problem.id = f"{family}-{split}-{len(seen) - 1:05d}"
            problems.append(problem)
    return problems


def verifier_for(family: str) -> str:
    """The verifier name for a family; families from outside (JSONL files) are checked as math."""
    return FAMILIES[family].verifier if family in FAMILIES else "math"
