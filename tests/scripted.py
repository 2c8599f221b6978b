"""A real model made to write a script: each forward pass puts (almost) all its probability on the script's next
token, then on EOS. It drives the tool loops (a random tiny model never writes a well-formed call) while
generation, the sandbox and the bookkeeping under test stay real. One forward pass is one new token, prefill
included, so a batch of identical prompts all write the script."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def scripted(model, tokenizer, *parts: str):
    """`parts` are tokenised one by one, so no token spans a tool call's end and what the runtime writes after it."""
    ids = [t for part in parts for t in tokenizer.encode(part, add_special_tokens=False)] + [tokenizer.eos_token_id]
    step = [0]

    def hook(module, inputs, logits):
        logits = logits.clone()
        logits[..., ids[min(step[0], len(ids) - 1)]] += 1000.0
        step[0] += 1
        return logits

    handle = model.get_output_embeddings().register_forward_hook(hook)
    try:
        yield ids
    finally:
        handle.remove()
