"""Verifiers: is an extracted answer right? One code path for filtering, rewards and evaluation."""

from __future__ import annotations

from functools import lru_cache

from math_verify import parse, verify

from distill.answers import extract_answer, format_problems


def _normalise(text: str) -> str:
    return " ".join(text.strip().strip(".").lower().split())


@lru_cache(maxsize=65536)
def _parsed(text: str):
    # math-verify reads LaTeX best inside math delimiters; a bare "1081" parses either way.
    return parse(f"${text}$")


def check_math(predicted: str, reference: str) -> bool:
    gold = _parsed(reference)
    # math-verify falls back to the raw string when nothing mathematical parses.
    if all(isinstance(g, str) for g in gold):
        raise ValueError(f"reference answer {reference!r} does not parse as mathematics")
    return bool(verify(gold, _parsed(predicted)))


def check_exact(predicted: str, reference: str) -> bool:
    return _normalise(predicted) == _normalise(reference)


VERIFIERS = {"math": check_math, "exact": check_exact}


def is_correct(predicted: str | None, reference: str, verifier: str) -> bool:
    """Whether an extracted answer matches the reference; a missing answer is wrong."""
    if verifier not in VERIFIERS:
        raise ValueError(f"unknown verifier {verifier!r}; expected one of {sorted(VERIFIERS)}")
    return predicted is not None and VERIFIERS[verifier](predicted, reference)


def judge(text: str, reference: str, verifier: str) -> tuple[bool, list[str]]:
    """Verdict on a full trace text: right answer *and* well formed; the reasons when it is not."""
    reasons = format_problems(text)
    predicted = extract_answer(text)
    if predicted is None:
        reasons.append("no answer found")
    elif not is_correct(predicted, reference, verifier):
        reasons.append(f"wrong answer: {predicted!r}, expected {reference!r}")
    return not reasons, reasons
