"""The one prompt every model teacher gets, so traces from different backends are comparable.

Everything goes in the user turn: DeepSeek-R1 and its distills are documented to do better without a
system prompt, and small chat templates (the tiny preset's) may not know a system role at all.
"""

from __future__ import annotations

from distill.records import Problem

INSTRUCTION = "Think step by step inside <think></think>, then give a short final answer with the result in \\boxed{}."
CODE_INSTRUCTION = "Think step by step inside <think></think>, then give the complete solution in one ```python code block."


def instruction(problem: Problem) -> str:
    # Code problems are graded by running their tests on the last python block, not by a boxed value.
    return CODE_INSTRUCTION if problem.tests else INSTRUCTION


def messages(problem: Problem) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{problem.question}\n\n{instruction(problem)}"}]
