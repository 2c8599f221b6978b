"""Curation: verify every teacher trace and keep the ones that are right and well formed."""

from __future__ import annotations

from collections import Counter

from distill.records import Problem, Trace
from distill.tasks import verifier_for
from distill.verify import judge


def verify_traces(traces: list[Trace], problems: dict[str, Problem]) -> tuple[list[Trace], list[Trace]]:
    """`(kept, rejected)`; every trace gets its `verified` flag and the `reasons` it failed."""
    kept, rejected = [], []
    for trace in traces:
        problem = problems[trace.problem_id]
        trace.verified, trace.reasons = judge(trace.text, problem.answer, verifier_for(problem.family))
        (kept if trace.verified else rejected).append(trace)
    return kept, rejected


def funnel(traces: list[Trace], kept: list[Trace]) -> dict[str, float]:
    """Counts and yield, overall and per family."""
    made, good = Counter(t.family for t in traces), Counter(t.family for t in kept)
    out: dict[str, float] = {"generated": len(traces), "verified": len(kept), "yield": len(kept) / max(len(traces), 1)}
    for family in sorted(made):
        out[f"{family}.generated"] = made[family]
        out[f"{family}.yield"] = good[family] / made[family]
    return out
