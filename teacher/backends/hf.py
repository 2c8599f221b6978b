"""The `transformers` teacher: any local or Hub causal LM, sampled in batches on this machine.

A small loader of its own (the teacher never imports the student): safetensors only and no remote
code; device, dtype and attention kernel chosen by `distill.hardware`, as for the student.

Thinking budget (`thinking_budget` > 0): the model thinks for at most that many tokens, stopping at
`</think>`; if the budget runs out first we close the block ourselves and let it answer in up to
`max_tokens` more. With `thinking_budget: 0` there is one pass of `max_tokens`, and a completion that
never closes its reasoning is kept as a failed trace.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from distill import hardware
from distill.answers import THINK_CLOSE
from distill.records import Problem, Trace
from teacher.prompts import messages
from teacher.traces import from_completion

CLOSER = f"\n{THINK_CLOSE}\n\n"


def load(ref: str, dtype: str = "auto"):
    """`(model, tokenizer)` on the best device here, ready for left-padded batched generation."""
    try:
        chosen = hardware.dtype(dtype)
    except ValueError as err:
        raise ValueError(f"teacher.dtype: {err}") from None
    tokenizer = AutoTokenizer.from_pretrained(ref)
    tokenizer.padding_side = "left"  # decoder-only batches need prompts flush against the new tokens
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        ref, dtype=chosen, attn_implementation=hardware.attention(), use_safetensors=True, trust_remote_code=False
    )
    return model.to(hardware.device()).eval(), tokenizer


class TransformersTeacher:
    name = "transformers"

    def __init__(self, cfg, seed: int):
        self.cfg, self.seed = cfg, seed
        self.model, self.tokenizer = load(cfg.model, cfg.dtype)
        self.stops = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id} - {None}

    def traces(self, problems: list[Problem], samples: int) -> Iterator[Trace]:
        size = max(1, self.cfg.batch_size)
        for start in range(0, len(problems), size):
            rows = [(p, s) for p in problems[start : start + size] for s in range(samples)]
            began = time.perf_counter()
            torch.manual_seed(self.seed + start)  # the same batch samples the same way on a rerun
            completions = self._complete([self._prompt(p) for p, _ in rows])
            # One generate call serves the whole batch; each trace gets its share of the wall time.
            seconds = (time.perf_counter() - began) / len(rows)
            for (problem, sample), (content, thought, answered) in zip(rows, completions, strict=True):
                yield from_completion(
                    problem,
                    sample,
                    self.name,
                    self.cfg.model,
                    content,
                    reasoning_tokens=thought,
                    answer_tokens=answered,
                    seconds=seconds,
                )

    def _prompt(self, problem: Problem) -> str:
        return self.tokenizer.apply_chat_template(messages(problem), tokenize=False, add_generation_prompt=True)

    def _complete(self, prompts: list[str]) -> list[tuple[str, int, int]]:
        """`(completion text, reasoning tokens, answer tokens)` per prompt."""
        budget = self.cfg.thinking_budget
        if budget <= 0:
            out = []
            for text, count in self._generate(prompts, self.cfg.max_tokens):
                thought = len(self.tokenizer.encode(text.partition(THINK_CLOSE)[0], add_special_tokens=False))
                thought = min(thought, count) if THINK_CLOSE in text else count
                out.append((text, thought, count - thought))
            return out
        thinking = self._generate(prompts, budget, stop=THINK_CLOSE)
        # Close whatever the budget cut off (or the model ended without closing), then let it answer.
        heads = [text if THINK_CLOSE in text else text + CLOSER for text, _ in thinking]
        answers = self._generate([prompt + head for prompt, head in zip(prompts, heads, strict=True)], self.cfg.max_tokens)
        return [
            (head + answer, thought, answered)
            for head, (_, thought), (answer, answered) in zip(heads, thinking, answers, strict=True)
        ]

    @torch.inference_mode()
    def _generate(self, texts: list[str], max_new: int, stop: str | None = None) -> list[tuple[str, int]]:
        """`(new text, new tokens up to and including EOS)` per text."""
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
        options = {"max_new_tokens": max_new, "pad_token_id": self.tokenizer.pad_token_id}
        if self.cfg.temperature > 0:
            options |= {"do_sample": True, "temperature": self.cfg.temperature, "top_p": self.cfg.top_p}
        else:
            options |= {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        if stop:
            options |= {"stop_strings": [stop], "tokenizer": self.tokenizer}
        new = self.model.generate(**batch, **options)[:, batch["input_ids"].shape[1] :]
        out = []
        for row in new.tolist():
            end = next((i + 1 for i, token in enumerate(row) if token in self.stops), len(row))
            out.append((self.tokenizer.decode(row[:end], skip_special_tokens=True), end))
        return out
