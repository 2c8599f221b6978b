"""Curation: verify every teacher trace, then run the enabled filters, counting what each removes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable

from distill.filters import FilterConfig, apply_filters
from distill.records import Problem, Trace
from distill.verify import judge_all, verifier_of


def verify_traces(traces: list[Trace], problems: dict[str, Problem]) -> tuple[list[Trace], list[Trace]]:
    """`(kept, rejected)`; every trace gets its `verified` flag and the `reasons` it failed.

    Reasons a backend already gave (a teacher that could not answer) stay first."""
    jobs = []
    for trace in traces:
        problem = problems[trace.problem_id]
        jobs.append((trace.text, problem.answer, verifier_of(problem), problem.tests))
    for trace, (ok, reasons) in zip(traces, judge_all(jobs), strict=True):
        trace.verified = ok and not trace.reasons
        trace.reasons = trace.reasons + reasons
    return [t for t in traces if t.verified], [t for t in traces if not t.verified]


def curate(
    traces: list[Trace],
    problems: dict[str, Problem],
    eval_questions: Iterable[str],
    cfg: FilterConfig,
    solved: Collection[str] | None = None,
) -> tuple[list[Trace], list[Trace], list[tuple[str, int]]]:
    """Verify, then filter (`verified` is itself the first filter): `(kept, rejected, funnel)`. `solved`: the
    problems the base student answers already, for `cfg.student_solved`."""
    verify_traces(traces, problems)
    return apply_filters(traces, problems, eval_questions, cfg, solved)


def funnel(traces: list[Trace], kept: list[Trace]) -> dict[str, float]:
    """Counts and yield, overall and per family."""
    made, good = Counter(t.family for t in traces), Counter(t.family for t in kept)
    out: dict[str, float] = {"generated": len(traces), "kept": len(kept), "yield": len(kept) / max(len(traces), 1)}
    for family in sorted(made):
        out[f"{family}.generated"] = made[family]
        out[f"{family}.yield"] = good[family] / made[family]
    return out
