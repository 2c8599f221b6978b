"""Batched greedy generation through transformers, the reference runtime."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from student.chat import prompt_messages


@torch.inference_mode()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: list[str],
    instruction: str,
    max_new_tokens: int,
    batch_size: int,
    desc: str = "generate",
) -> list[tuple[str, int]]:
    """`(text, new_token_count)` per question, in order."""
    outputs: list[tuple[str, int]] = []
    with tqdm(total=len(questions), desc=desc, unit="q") as bar:
        for start in range(0, len(questions), batch_size):
            batch = questions[start : start + batch_size]
            prompts = [
                tokenizer.apply_chat_template(prompt_messages(q, instruction), tokenize=False, add_generation_prompt=True)
                for q in batch
            ]
            enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            new = out[:, enc["input_ids"].shape[1] :]
            for row in new:
                n_tokens = int((row != tokenizer.pad_token_id).sum())
                outputs.append((tokenizer.decode(row, skip_special_tokens=True), n_tokens))
            bar.update(len(batch))
    return outputs
