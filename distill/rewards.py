"""Rewards for RL, built from the verifiers, with the signature TRL's `GRPOTrainer` calls.

TRL passes the completions plus every dataset column as keyword arguments; our RL dataset carries
`answer`, `verifier` and `tests` columns, so the reward reads the reference the way eval does.
"""

from __future__ import annotations

from distill.verify import answer_for, format_problems_for, is_correct


def _text(completion) -> str:
    # Conversational datasets give a list of messages, plain ones a string.
    return completion[-1]["content"] if isinstance(completion, list) else completion


def correctness_reward(completions, answer, verifier, tests=None, **_) -> list[float]:
    """1.0 when the extracted answer verifies against the reference (or passes the tests), else 0.0."""
    tests = tests or [()] * len(completions)
    return [
        float(is_correct(answer_for(_text(c), kind), ref, kind, case))
        for c, ref, kind, case in zip(completions, answer, verifier, tests, strict=True)
    ]


def format_reward(completions, verifier=None, **_) -> list[float]:
    """1.0 for a closed think block followed by exactly one final answer, else 0.0."""
    kinds = verifier or ["math"] * len(completions)
    return [0.0 if format_problems_for(_text(c), kind) else 1.0 for c, kind in zip(completions, kinds, strict=True)]


REWARDS = {"correctness": correctness_reward, "format": format_reward}
