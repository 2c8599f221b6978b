"""The procedural teacher: exact o1-style traces for the built-in families, no model needed."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

from distill.records import Problem, Trace
from teacher import procedural


class ProceduralTeacher:
    """Solves built-in problems exactly; token counts are whitespace words (it has no tokenizer)."""

    name = "procedural"

    def __init__(self, seed: int, slip_rate: float):
        self.seed, self.slip_rate = seed, slip_rate

    def traces(self, problems: list[Problem], samples: int) -> Iterator[Trace]:
        for problem in problems:
            for sample in range(samples):
                start = time.perf_counter()
                if problem.family not in procedural.WRITERS:
                    reason = f"the procedural teacher cannot solve family {problem.family!r}; use a model teacher"
                    yield Trace(problem.id, problem.family, sample, self.name, "procedural", "", "", reasons=[reason])
                    continue
                rng = random.Random(f"{self.seed}:{problem.id}:{sample}")
                reasoning, answer_text = procedural.solve(problem, rng, self.slip_rate)
                yield Trace(
                    problem_id=problem.id,
                    family=problem.family,
                    sample=sample,
                    backend=self.name,
                    model=f"procedural-slip{self.slip_rate:g}",
                    reasoning=reasoning,
                    answer_text=answer_text,
                    reasoning_tokens=len(reasoning.split()),
                    answer_tokens=len(answer_text.split()),
                    seconds=time.perf_counter() - start,
                )
