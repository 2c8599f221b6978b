"""Scoring a model on problems: generate, extract the answer the same way for every model, verify."""

from __future__ import annotations

import gc
from typing import Any

from distill.metrics import accuracy_table, majority_vote
from distill.records import Problem
from distill.verify import TESTED, answer_for, is_correct, verifier_of
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


def guess_baseline(train: list[Problem], problems: list[Problem]) -> dict[str, Any]:
    """What answering without reading scores: every problem gets its family's most common training answer,
    graded like a model's answer. A model's accuracy means something only above this line (on letter counting
    the answer is 0, 1 or 2 nearly always). Families without training problems, and code, which is graded by
    tests, get no guess. The table has the usual shape, plus `guesses` (family -> answer)."""
    guesses = {}
    for family in sorted({p.family for p in problems}):
        seen = [p for p in train if p.family == family]
        if seen and verifier_of(seen[0]) not in TESTED:
            guesses[family] = majority_vote([p.answer for p in seen])
    rows = [
        {"family": p.family, "predicted": guesses[p.family], "correct": is_correct(guesses[p.family], p.answer, verifier_of(p))}
        for p in problems
        if p.family in guesses
    ]
    return {**accuracy_table(rows), "guesses": guesses} if rows else {}


def check_sweep(budgets: list[int], samples: list[int]) -> None:
    if not budgets or not samples or min(samples) < 1 or min(budgets) < 0:
        raise ValueError(f"scaling needs budgets >= 0 and samples >= 1; got budgets={budgets}, samples={samples}")


def scaling_sweep(
    ref: str,
    problems: list[Problem],
    instruction: str,
    budgets: list[int],
    samples: list[int],
    temperature: float,
    answer_tokens: int,
    batch_size: int,
    extend: int = 0,
    seed: int = 0,
    desc: str = "scaling",
) -> list[dict[str, Any]]:
    """Accuracy against thinking time: per budget, `max(samples)` sampled answers a problem under budget forcing,
    graded and summarised by `sample_table` (pass@1 ± se, pass@k, maj@k, best-of-k), with the thinking tokens used."""
    from tqdm.auto import tqdm

    from distill.metrics import sample_table
    from distill.verify import format_problems_for
    from student.chat import prompt_messages
    from student.thinking import generate_with_budget

    check_sweep(budgets, samples)
    n = max(samples)
    model, tokenizer = load_model(ref), load_tokenizer(ref)
    prompts = [
        tokenizer.apply_chat_template(prompt_messages(p.question, instruction), tokenize=False, add_generation_prompt=True)
        for p in problems
    ]
    points = []
    for budget in tqdm(budgets, desc=desc, unit="budget"):
        results = generate_with_budget(
            model, tokenizer, prompts, budget, answer_tokens, extend, temperature=temperature, num_samples=n,
            seed=seed, batch_size=batch_size,
        )  # fmt: skip
        rows = []
        for i, problem in enumerate(problems):
            verifier, graded = verifier_of(problem), []
            for result in results[i * n : (i + 1) * n]:
                predicted = answer_for(result.text, verifier)
                graded.append(
                    {
                        "predicted": predicted,
                        "correct": is_correct(predicted, problem.answer, verifier, problem.tests),
                        "format_ok": not format_problems_for(result.text, verifier),
                        "tokens": result.thinking_tokens + result.answer_tokens,
                        "thinking_tokens": result.thinking_tokens,
                        "forced": result.forced,
                    }
                )
            rows.append({"id": problem.id, "family": problem.family, "samples": graded})
        table = sample_table(rows, sorted(set(samples)))
        used = [s["thinking_tokens"] for r in rows for s in r["samples"]]
        table["overall"]["thinking_tokens"] = sum(used) / len(used)
        table["overall"]["forced_rate"] = sum(s["forced"] for r in rows for s in r["samples"]) / len(used)
        points.append({"budget": budget, **table})
    del model
    gc.collect()
    return points
