"""The chat format the student learns and is asked in: one place, used by SFT, RL, eval and bench."""

from __future__ import annotations


def prompt_messages(question: str, instruction: str) -> list[dict[str, str]]:
    content = f"{question}\n{instruction}" if instruction else question
    return [{"role": "user", "content": content}]


def sft_rows(problems, traces, instruction: str) -> list[dict[str, list[dict[str, str]]]]:
    """One row per trace, asked with its problem's question (`problems` holds every trace's problem)."""
    by_id = {p.id: p for p in problems}
    return [sft_row(by_id[t.problem_id].question, instruction, t.text) for t in traces]


def sft_row(question: str, instruction: str, completion: str) -> dict[str, list[dict[str, str]]]:
    """A prompt-completion row: TRL computes the loss on the completion (the assistant turn) only."""
    return {
        "prompt": prompt_messages(question, instruction),
        "completion": [{"role": "assistant", "content": completion}],
    }
