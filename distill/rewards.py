"""Rewards for RL, built from the verifiers, with the signature TRL's `GRPOTrainer` calls.

TRL passes the completions plus every dataset column as keyword arguments; our RL dataset carries
`answer` and `verifier` columns, so the reward reads the reference from the same place eval does.
"""

from __future__ import annotations

from distill.answers import extract_answer, format_problems
from distill.verify import is_correct


def _text(completion) -> str:
    # Conversational datasets give a list of messages, plain ones a string.
    return completion[-1]["content"] if isinstance(completion, list) else completion


def correctness_reward(completions, answer, verifier, **_) -> list[float]:
    """1.0 when the extracted answer verifies against the reference, else 0.0."""
    return [
        float(is_correct(extract_answer(_text(c)), ref, kind)) for c, ref, kind in zip(completions, answer, verifier, strict=True)
    ]


def format_reward(completions, **_) -> list[float]:
    """1.0 for a closed think block followed by exactly one boxed answer, else 0.0."""
    return [0.0 if format_problems(_text(c)) else 1.0 for c in completions]


REWARDS = {"correctness": correctness_reward, "format": format_reward}
