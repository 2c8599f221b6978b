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
