"""Thinking control at inference: s1-style budget forcing (Muennighoff et al. 2025, "s1: Simple test-time scaling").

Phase 1 thinks for at most `budget` tokens and stops at `</think>`; if the budget runs out first we close the block
(CLOSER, `forced`); if the model closes early and `extend` allows, its `</think>` becomes "Wait" and it thinks on
within the same budget. Phase 2 always writes the answer, so every `text` is `<think>\n…</think>…` with the tag once:
`<think>\n` is prefilled unless the prompt ends with `<think>`; EOS is suppressed while thinking; both tags are banned
in the answer (`<think>` throughout). `thinking_tokens` counts the think block's tokens (the model's own `</think>` and
inserted "Wait"s too, never our closer); `answer_tokens` includes the answer's EOS, so it is at least 1.

A call to the Python tool (`distill.tools`) while thinking also ends a round: the sandbox runs it, its
`<output>` joins the think block (and counts against the budget, as context the model reads) and thinking goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from distill import tools
from distill.answers import THINK_CLOSE, THINK_OPEN

EFFORT_BUDGETS = {"low": 64, "medium": 256, "high": 1024}
OPENER, CLOSER = f"{THINK_OPEN}\n", f"\n{THINK_CLOSE}\n\n"
# `on_delta(result_index, "reasoning" | "content", text)`: the two streams concatenate to `reasoning` and `answer`.
OnDelta = Callable[[int, str, str], None]


class GenerationCancelled(Exception):
    """The caller set the cancel event (an HTTP client went away): nothing is returned."""


@dataclass
class ThoughtResult:
    text: str
    thinking_tokens: int
    answer_tokens: int
    forced: bool
    extensions: int
    finish_reason: str = "stop"  # "length" when the answer hit max_answer_tokens before EOS

    @property
    def reasoning(self) -> str:
        return self.text[len(OPENER) :].partition(THINK_CLOSE)[0]

    @property
    def answer(self) -> str:
        return self.text.partition(THINK_CLOSE)[2].lstrip()


@dataclass
class _Row:
    index: int
    prompt: list[int]
    budget: int
    think: list[int]  # the ids inside the think block, as the model reads them
    think_text: str = ""
    forced: bool = False
    extensions: int = 0
    sent: list[str] = field(default_factory=lambda: ["", ""])  # reasoning and content streamed so far


class _Watch(StoppingCriteria):
    """Per-row stop (own token limit, EOS, `</think>` or a tool call while thinking), all on cancel; runs every step,
    so it also streams."""

    def __init__(self, tokenizer, start, limits, eos, watch_close, cancel, on_step):
        self.tokenizer, self.start, self.limits, self.eos = tokenizer, start, limits, eos
        self.watch_close, self.cancel, self.on_step = watch_close, cancel, on_step
        self.done_at: list[int | None] = [None] * len(limits)

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        new = input_ids[:, self.start :]
        for r, limit in enumerate(self.limits):
            if self.done_at[r] is not None:
                continue  # finished rows only get padding from here on
            tail = new[r, -len(tools.CALL_CLOSE) :].tolist()  # the longest tag watched: at most one token a character
            if self.on_step is not None:
                self.on_step(r, new[r].tolist())
            text = self.tokenizer.decode(tail, skip_special_tokens=True) if self.watch_close else ""
            closed = THINK_CLOSE in text or tools.CALL_CLOSE in text
            if new.shape[1] >= limit or tail[-1] in self.eos or closed:
                self.done_at[r] = new.shape[1]
        cancelled = self.cancel is not None and self.cancel.is_set()
        return torch.tensor([cancelled or d is not None for d in self.done_at], device=input_ids.device)


def _holdback(text: str) -> str:
    """Text safe to stream now: not a half-decoded character, nor what may be the start of `</think>`."""
    text = text.rstrip("\ufffd")
    return next((text[:-k] for k in range(len(THINK_CLOSE) - 1, 0, -1) if text.endswith(THINK_CLOSE[:k])), text)


def _publish(row: _Row, on_delta: OnDelta | None, think_text: str, answer_text: str | None, final: bool = False) -> None:
    """Stream what is new since the last call: the reasoning up to `</think>`, then (answer phase only) the content."""
    if on_delta is None:
        return
    head, closed, tail = think_text.partition(THINK_CLOSE)
    reasoning = head if closed or final else _holdback(head)
    content = "" if answer_text is None else (tail + answer_text).lstrip()
    for k, (kind, now) in enumerate((("reasoning", reasoning), ("content", content if final else _holdback(content)))):
        if len(now) > len(row.sent[k]) and now.startswith(row.sent[k]):
            on_delta(row.index, kind, now[len(row.sent[k]) :])
            row.sent[k] = now


class _Gen:
    """What every `generate` call of one request shares."""

    def __init__(self, model, tokenizer, eos: set[int], sampling: dict, cancel: threading.Event | None, on_delta: OnDelta | None):
        self.model, self.tokenizer, self.eos, self.sampling = model, tokenizer, eos, sampling
        self.cancel, self.on_delta = cancel, on_delta
        self.enc = partial(tokenizer.encode, add_special_tokens=False)
        self.dec = partial(tokenizer.decode, skip_special_tokens=True)

    def run(self, seqs, limits, watch_close, on_step, **banned) -> list[list[int]]:
        """One left-padded `generate` over rows with their own token limits; each row's new ids, cut where it stopped."""
        width, pad, device = max(map(len, seqs)), self.tokenizer.pad_token_id, self.model.device
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=device)
        watch = _Watch(self.tokenizer, width, limits, self.eos, watch_close, self.cancel, on_step if self.on_delta else None)
        kwargs = dict(attention_mask=mask, max_new_tokens=max(limits), stopping_criteria=StoppingCriteriaList([watch]))
        out = self.model.generate(ids, pad_token_id=pad, eos_token_id=sorted(self.eos), **kwargs, **self.sampling, **banned)
        if self.cancel is not None and self.cancel.is_set():
            raise GenerationCancelled
        return [out[r, width : width + (done or limits[r])].tolist() for r, done in enumerate(watch.done_at)]

    def think(self, rows: list[_Row], extend: int, wait: str) -> None:
        """Phase 1 in rounds: a round ends at `</think>`, a tool call or the budget; a call's output, or "Wait" for an early
        close, starts another round."""
        rows = [r for r in rows if r.budget > 0]
        ban = {"suppress_tokens": sorted(self.eos), "bad_words_ids": [self.enc(THINK_OPEN)]}
        while rows:
            hook = lambda i, ids, rs=rows: _publish(rs[i], self.on_delta, rs[i].think_text + self.dec(ids), None)  # noqa: E731
            outs = self.run([r.prompt + r.think for r in rows], [r.budget - len(r.think) for r in rows], True, hook, **ban)
            again = []
            for r, new in zip(rows, outs, strict=True):
                text = self.dec(new)
                if THINK_CLOSE not in text and tools.pending_call(text) is not None:
                    if self.answer_call(r, new, text):
                        again.append(r)
                    continue
                before = text.partition(THINK_CLOSE)[0]
                sep = "\n" if (r.think_text + before)[-1:].strip() else ""  # "Wait" starts a new line of thought
                more = self.enc(before + sep + wait)  # the text re-tokenised: what the model reads next round
                if THINK_CLOSE in text and r.extensions < extend and len(r.think) + len(more) < r.budget:
                    r.think, r.think_text, r.extensions = r.think + more, r.think_text + before + sep + wait, r.extensions + 1
                    again.append(r)
                else:
                    r.think, r.think_text, r.forced = r.think + new, r.think_text + text, THINK_CLOSE not in text
            rows = again

    def answer_call(self, r: _Row, new: list[int], text: str) -> bool:
        """The round ended on a tool call: the sandbox's output joins the think block (re-tokenised with the call: what
        the model reads next round) where it fits the budget; where it does not, the row thinks on without it. False
        once the budget is spent."""
        done = text.rstrip() + tools.answer(text)
        ids = self.enc(done)
        if len(r.think) + len(ids) < r.budget:
            r.think, r.think_text = r.think + ids, r.think_text + done
        else:
            r.think, r.think_text = r.think + new, r.think_text + text
        r.forced = len(r.think) >= r.budget
        return not r.forced

    def answer(self, rows: list[_Row], max_answer_tokens: int) -> list[ThoughtResult]:
        """Phase 2: close the think block where the model did not, then the answer until EOS or the limit."""
        for r in rows:
            r.forced = r.forced or r.budget == 0
            r.think_text += CLOSER if r.forced else ""
        hook = lambda i, ids: _publish(rows[i], self.on_delta, rows[i].think_text, self.dec(ids))  # noqa: E731
        seqs = [r.prompt + r.think + (self.enc(CLOSER) if r.forced else []) for r in rows]
        bad = [self.enc(THINK_OPEN), self.enc(THINK_CLOSE)]
        results = []
        for r, new in zip(rows, self.run(seqs, [max_answer_tokens] * len(rows), False, hook, bad_words_ids=bad), strict=True):
            answer, finish = self.dec(new), "stop" if new and new[-1] in self.eos else "length"
            _publish(r, self.on_delta, r.think_text, answer, final=True)
            results.append(ThoughtResult(OPENER + r.think_text + answer, len(r.think), len(new), r.forced, r.extensions, finish))
        return results


@torch.inference_mode()
def generate_with_budget(
    model,
    tokenizer,
    prompts: list[str],
    budget: int | None,
    max_answer_tokens: int,
    extend: int = 0,
    wait: str = "Wait",
    temperature: float = 0.0,
    num_samples: int = 1,
    seed: int | None = None,
    *,
    top_p: float = 1.0,
    batch_size: int = 16,
    cancel: threading.Event | None = None,
    on_delta: OnDelta | None = None,
) -> list[ThoughtResult]:
    """`num_samples` results per prompt, prompt-major. `budget=None`: think until the context is full."""
    if (budget is not None and budget < 0) or max_answer_tokens < 1 or num_samples < 1:
        raise ValueError("budget must be >= 0, max_answer_tokens and num_samples >= 1")
    if seed is not None:
        torch.manual_seed(seed)
    eos = model.generation_config.eos_token_id
    eos = {tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
    gen = _Gen(model, tokenizer, eos, sampling, cancel, on_delta)
    context = getattr(model.config, "max_position_embeddings", None) or 1 << 15
    rows: list[_Row] = []
    for p in prompts:
        ids = gen.enc(p if p.rstrip().endswith(THINK_OPEN) else p + OPENER)
        room = max(0, context - len(ids) - max_answer_tokens - len(gen.enc(CLOSER)))
        rows += [_Row(len(rows) + i, ids, room if budget is None else budget, []) for i in range(num_samples)]
    results = []
    for start in range(0, len(rows), batch_size):
        gen.think(rows[start : start + batch_size], extend, wait)
        results += gen.answer(rows[start : start + batch_size], max_answer_tokens)
    return results
