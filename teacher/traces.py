"""Turning one model completion into a Trace, the same way for every backend.

A completion that cannot be split into reasoning and a final answer becomes a failed trace whose
`reasons` say why; verification keeps those reasons first, so nothing downstream has to guess.
"""

from __future__ import annotations

from distill.answers import THINK_CLOSE, THINK_OPEN, split_reasoning
from distill.records import Problem, Trace


def failed(problem: Problem, sample: int, backend: str, model: str, reason: str, seconds: float = 0.0, **counts) -> Trace:
    return Trace(problem.id, problem.family, sample, backend, model, "", "", seconds=seconds, reasons=[reason], **counts)


def from_completion(
    problem: Problem,
    sample: int,
    backend: str,
    model: str,
    content: str,
    reasoning: str | None = None,
    *,
    reasoning_tokens: int = 0,
    answer_tokens: int = 0,
    seconds: float = 0.0,
    finish_reason: str | None = None,
) -> Trace:
    """`reasoning` is a separate field (`reasoning_content`/`reasoning`) when the server splits it out;
    otherwise the reasoning is read from an inline `<think>…</think>` block in `content`."""
    content = content or ""
    if reasoning:
        answer = split_reasoning(content)[1] if THINK_CLOSE in content else content.strip()
        reasoning = reasoning.strip()
    else:
        reasoning, answer = split_reasoning(content)
    trace = Trace(
        problem.id,
        problem.family,
        sample,
        backend,
        model,
        reasoning or "",
        answer,
        reasoning_tokens=reasoning_tokens,
        answer_tokens=answer_tokens,
        seconds=seconds,
    )
    ended = f" (finish_reason={finish_reason})" if finish_reason else ""
    if reasoning is None:
        # Keep what the model wrote, for debugging; it is rejected either way.
        trace.reasoning, trace.answer_text = content.replace(THINK_OPEN, "").strip(), ""
        trace.reasons = [f"no final answer: the reasoning never closed with {THINK_CLOSE}{ended}"]
    elif not answer:
        trace.reasons = [f"no final answer after the reasoning{ended}"]
    return trace
