"""The chat format the student learns and is asked in: one place, used by SFT, RL, eval and bench."""

from __future__ import annotations


def prompt_messages(question: str, instruction: str) -> list[dict[str, str]]:
    content = f"{question}\n{instruction}" if instruction else question
    return [{"role": "user", "content": content}]


def sft_row(question: str, instruction: str, completion: str) -> dict[str, list[dict[str, str]]]:
    """A prompt-completion row: TRL computes the loss on the completion (the assistant turn) only."""
    return {
        "prompt": prompt_messages(question, instruction),
        "completion": [{"role": "assistant", "content": completion}],
    }
