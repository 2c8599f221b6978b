"""Scoring a model on problems: generate, extract the answer the same way for every model, verify."""

from __future__ import annotations

import gc
from typing import Any

from distill.metrics import accuracy_table
from distill.records import Problem
from distill.verify import answer_for, is_correct, verifier_of
from student.inference import generate
from student.load import load_model, load_tokenizer


def evaluate(
    ref: str, problems: list[Problem], instruction: str, max_new_tokens: int, batch_size: int, desc: str = "eval"
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """`(answers, table)`: every model answer graded, and accuracy overall and per family."""
    model, tokenizer = load_model(ref), load_tokenizer(ref)
    outputs = generate(model, tokenizer, [p.question for p in problems], instruction, max_new_tokens, batch_size, desc)
    del model
    gc.collect()
    answers = []
    for problem, (text, n_tokens) in zip(problems, outputs, strict=True):
        verifier = verifier_of(problem)
        predicted = answer_for(text, verifier)
        answers.append(
            {
                "id": problem.id,
                "family": problem.family,
                "question": problem.question,
                "answer": problem.answer,
                "output": text,
                "predicted": predicted,
                "correct": is_correct(predicted, problem.answer, verifier, problem.tests),
                "tokens": n_tokens,
            }
        )
    table = accuracy_table(answers)
    table["overall"]["mean_tokens"] = sum(a["tokens"] for a in answers) / len(answers)
    return answers, table
