"""Accuracy over graded answers, overall and per family."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any


def accuracy_table(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Rows carry `family`, `correct` and `predicted`; returns accuracy and no-answer rates."""
    by_family: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_family[row["family"]].append(row)
    everything = [r for group in by_family.values() for r in group]
    if not everything:
        raise ValueError("no graded answers to summarise")

    def rates(group: list[dict[str, Any]]) -> dict[str, float]:
        return {
            "accuracy": sum(r["correct"] for r in group) / len(group),
            "no_answer_rate": sum(r["predicted"] is None for r in group) / len(group),
            "n": len(group),
        }

    return {"overall": rates(everything), "per_family": {f: rates(g) for f, g in sorted(by_family.items())}}


# Sampled evaluation: n samples per problem, each `{"predicted": str | None, "correct": bool, "format_ok": bool,
# "tokens": int}`. Every estimator takes one problem's samples; `sample_table` averages them over problems.


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from `n` samples of which `c` are correct (Chen et al. 2021): 1 - C(n-c, k) / C(n, k).

    Computed as 1 - prod_{i=n-c+1..n} (1 - k/i), which never forms the huge binomials."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def mean_and_se(values: list[float]) -> tuple[float, float]:
    """The mean and its standard error (sample standard deviation / sqrt(len)); the error is 0 for one value."""
    if not values:
        raise ValueError("no values")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, (variance / len(values)) ** 0.5


def majority_vote(answers: list[str | None]) -> str | None:
    """The most frequent answer, compared after stripping whitespace; a missing answer (None) never wins.

    Ties go to the tied answer seen first, so the vote is deterministic and needs no random numbers."""
    counts: dict[str, int] = {}
    for answer in answers:
        if answer is not None:
            key = answer.strip()
            counts[key] = counts.get(key, 0) + 1  # dicts keep insertion order: first-seen comes first
    return max(counts, key=counts.__getitem__) if counts else None  # max keeps the first of equal keys


def maj_at_k(samples: list[dict[str, Any]], k: int) -> bool:
    """Whether the majority answer of the first `k` samples is correct (all samples with that answer agree)."""
    first = samples[:k]
    voted = majority_vote([s["predicted"] for s in first])
    return voted is not None and any(s["correct"] for s in first if (s["predicted"] or "").strip() == voted)


def best_of_n(samples: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """The first `k` samples' best by a score that needs no reference: an answer found and a well-formed trace
    first, then fewer tokens, then the earliest sample."""
    ranked = enumerate(samples[:k])
    return min(ranked, key=lambda item: (item[1]["predicted"] is None, not item[1]["format_ok"], item[1]["tokens"], item[0]))[1]


def sample_table(rows: list[dict[str, Any]], ks: list[int]) -> dict[str, Any]:
    """Rows carry `family` and `samples` (n per problem, the same n for all). Returns overall and per family:
    `pass@1` (mean over samples and problems) with `pass@1_se` (standard error over problems), and for every k
    in `ks` up to n: `pass@k` (unbiased), `maj@k` and `best_of@k` (the verifier-free choice, graded)."""
    if not rows:
        raise ValueError("no sampled answers to summarise")
    n = min(len(r["samples"]) for r in rows)
    if n < max(ks):
        raise ValueError(f"k={max(ks)} needs at least that many samples per problem; got {n}")

    def rates(group: list[dict[str, Any]]) -> dict[str, float]:
        per_problem = [sum(s["correct"] for s in r["samples"][:n]) for r in group]
        out: dict[str, float] = {"n_problems": len(group), "n_samples": n}
        out["pass@1"], out["pass@1_se"] = mean_and_se([c / n for c in per_problem])
        for k in ks:
            out[f"pass@{k}"] = sum(pass_at_k(n, c, k) for c in per_problem) / len(group)
            out[f"maj@{k}"] = sum(maj_at_k(r["samples"], k) for r in group) / len(group)
            out[f"best_of@{k}"] = sum(bool(best_of_n(r["samples"], k)["correct"]) for r in group) / len(group)
        out["no_answer_rate"] = sum(s["predicted"] is None for r in group for s in r["samples"][:n]) / (len(group) * n)
        out["mean_tokens"] = sum(s["tokens"] for r in group for s in r["samples"][:n]) / (len(group) * n)
        return out

    by_family: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_family[row["family"]].append(row)
    return {"overall": rates(rows), "per_family": {f: rates(g) for f, g in sorted(by_family.items())}}
