"""Batched greedy generation through transformers, the reference runtime."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from student.chat import prompt_messages

# Answers that end early leave the batch every CHUNK tokens. transformers' `generate` keeps a finished row in
# the batch, padding, until the longest one ends; on a CPU every row costs the same, so a batch of 40 greedy
# answers with a few loops to the token limit paid for 40 full-length ones.
CHUNK = 32


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
            prompts = [
                tokenizer.apply_chat_template(prompt_messages(q, instruction), tokenize=False, add_generation_prompt=True)
                for q in questions[start : start + batch_size]
            ]
            for row in greedy(model, tokenizer, prompts, max_new_tokens, bar):
                n_tokens = int((row != tokenizer.pad_token_id).sum())
                outputs.append((tokenizer.decode(row, skip_special_tokens=True), n_tokens))
    return outputs


def greedy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str], max_new_tokens: int, bar, chunk: int = CHUNK
) -> list[torch.Tensor]:
    """The new tokens of each prompt's greedy answer, generated together; a row leaves once it has ended."""
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    ids, mask, prompt_len = enc["input_ids"], enc["attention_mask"], enc["input_ids"].shape[1]
    rows, cache, answers = torch.arange(len(prompts)), DynamicCache(config=model.config), [None] * len(prompts)
    settings = {
        "do_sample": False,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "return_dict_in_generate": True,
    }
    while len(rows):
        step = min(chunk, max_new_tokens - (ids.shape[1] - prompt_len))
        # The cache holds every token but the last; generate feeds only the uncached ones.
        out = model.generate(input_ids=ids, attention_mask=mask, past_key_values=cache, max_new_tokens=step, **settings)
        new = out.sequences[:, prompt_len:]
        ended = (new == tokenizer.eos_token_id).any(dim=1) | (new.shape[1] >= max_new_tokens)
        for i in ended.nonzero()[:, 0].tolist():
            answers[rows[i]] = new[i]
        bar.update(int(ended.sum()))
        keep = (~ended).nonzero()[:, 0]
        # A row still going has no padding among its new tokens, so its mask grows by ones.
        grown = torch.ones(len(rows), out.sequences.shape[1] - ids.shape[1], dtype=mask.dtype, device=mask.device)
        ids, mask, rows, cache = out.sequences[keep], torch.cat([mask, grown], dim=1)[keep], rows[keep], out.past_key_values
        if len(rows):
            cache.batch_select_indices(keep)
    return answers
