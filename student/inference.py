"""Batched greedy generation through transformers, the reference runtime, with the Python tool in the loop."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from distill import tools
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
    """`(text, new_token_count)` per question, in order. An answer that calls the Python tool stops at
    `</python>`; the tool's output is written after the call and the answer goes on in a later batch. Only the
    model's own tokens count, against `max_new_tokens` and in the count returned."""
    prompts = [
        tokenizer.apply_chat_template(prompt_messages(q, instruction), tokenize=False, add_generation_prompt=True)
        for q in questions
    ]
    texts, used, todo = [""] * len(prompts), [0] * len(prompts), list(range(len(prompts)))
    with tqdm(total=len(questions), desc=desc, unit="q") as bar:
        while todo:
            waiting = []
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                limits = [max_new_tokens - used[i] for i in batch]
                rows = greedy(model, tokenizer, [prompts[i] + texts[i] for i in batch], limits, bar)
                for i, row in zip(batch, rows, strict=True):
                    used[i] += int((row != tokenizer.pad_token_id).sum())
                    texts[i] += tokenizer.decode(row, skip_special_tokens=True)
                    if tools.pending_call(texts[i]) is None:
                        continue
                    if used[i] < max_new_tokens:
                        texts[i] = texts[i].rstrip() + tools.answer(texts[i])
                        waiting.append(i)
                    else:
                        bar.update(1)  # out of tokens on the call itself: this answer is done
            todo = waiting
    return list(zip(texts, used, strict=True))


def greedy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str], limits: list[int], bar, chunk: int = CHUNK
) -> list[torch.Tensor]:
    """The new tokens of each prompt's greedy answer, at most `limits[i]` of them, generated together; a row
    leaves once it has ended: at EOS, at its limit, or on closing a tool call."""
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    ids, mask, prompt_len = enc["input_ids"], enc["attention_mask"], enc["input_ids"].shape[1]
    rows, cache, answers = torch.arange(len(prompts)), DynamicCache(config=model.config), [None] * len(prompts)
    limit = torch.tensor(limits)
    settings = {
        "do_sample": False,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "return_dict_in_generate": True,
        "stop_strings": [tools.CALL_CLOSE],
        "tokenizer": tokenizer,
    }
    while len(rows):
        step = min(chunk, int(limit[rows].max()) - (ids.shape[1] - prompt_len))
        # The cache holds every token but the last; generate feeds only the uncached ones.
        out = model.generate(input_ids=ids, attention_mask=mask, past_key_values=cache, max_new_tokens=step, **settings)
        new = out.sequences[:, prompt_len:]
        # A row leaves at its first call, so a call anywhere in its new tokens is the one it just closed.
        called = torch.tensor([tools.CALL_CLOSE in tokenizer.decode(r, skip_special_tokens=True) for r in new])
        ended = (new == tokenizer.eos_token_id).any(dim=1) | (new.shape[1] >= limit[rows]) | called
        for i in ended.nonzero()[:, 0].tolist():
            answers[rows[i]] = new[i, : limit[rows[i]]]
        bar.update(int((ended & ~called).sum()))  # a row that called the tool comes back once it has the output
        keep = (~ended).nonzero()[:, 0]
        # A row still going has no padding among its new tokens, so its mask grows by ones.
        grown = torch.ones(len(rows), out.sequences.shape[1] - ids.shape[1], dtype=mask.dtype, device=mask.device)
        ids, mask, rows, cache = out.sequences[keep], torch.cat([mask, grown], dim=1)[keep], rows[keep], out.past_key_values
        if len(rows):
            cache.batch_select_indices(keep)
    return answers
