"""Latency of one model variant: time to first token, per-token times, end-to-end percentiles, memory.

Every request generates exactly `max_new_tokens` greedily (batch 1), so variants are compared on the
same amount of work. A stopping criterion stamps the clock as each token lands.
"""

from __future__ import annotations

import gc
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from student import hardware
from student.chat import prompt_messages
from student.load import load_model, load_tokenizer, size_on_disk


class _TokenClock(StoppingCriteria):
    def __init__(self):
        self.stamps: list[float] = []

    def __call__(self, input_ids, scores, **kwargs):
        self.stamps.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


class _PeakRSS:
    """Samples this process's resident memory in a thread; CPU models live there."""

    def __init__(self, every: float = 0.01):
        self.peak, self._every, self._stop = 0, every, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        process = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, process.memory_info().rss)
            self._stop.wait(self._every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _timed_request(model, tokenizer, prompt: str, max_new_tokens: int) -> tuple[float, list[float]]:
    """`(start, stamps)`: when the request began and when each new token landed."""
    enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
    clock = _TokenClock()
    begin = time.perf_counter()
    model.generate(
        **enc,
        max_new_tokens=max_new_tokens,
        min_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        stopping_criteria=StoppingCriteriaList([clock]),
    )
    return begin, clock.stamps


@torch.inference_mode()
def measure(ref: str, questions: list[str], instruction: str, max_new_tokens: int, warmup: int, repeats: int) -> dict[str, Any]:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with _PeakRSS() as rss:
        start = time.perf_counter()
        model, tokenizer = load_model(ref), load_tokenizer(ref)
        load_s = time.perf_counter() - start
        prompts = [
            tokenizer.apply_chat_template(prompt_messages(q, instruction), tokenize=False, add_generation_prompt=True)
            for q in questions
        ]
        for prompt in prompts[:1] * warmup:
            _timed_request(model, tokenizer, prompt, max_new_tokens)
        ttft, itl, e2e, tokens = [], [], [], 0
        for _ in range(repeats):
            for prompt in prompts:
                begin, stamps = _timed_request(model, tokenizer, prompt, max_new_tokens)
                ttft.append(stamps[0] - begin)
                itl += [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
                e2e.append(stamps[-1] - begin)
                tokens += len(stamps)
        footprint = model.get_memory_footprint()
        del model
        gc.collect()
    ms = 1000.0
    return {
        "ttft_ms_p50": percentile(ttft, 0.5) * ms,
        "ttft_ms_p95": percentile(ttft, 0.95) * ms,
        "tpot_ms": statistics.mean(itl) * ms if itl else 0.0,
        "itl_ms_p95": percentile(itl, 0.95) * ms if itl else 0.0,
        "latency_ms_p50": percentile(e2e, 0.5) * ms,
        "latency_ms_p95": percentile(e2e, 0.95) * ms,
        "tokens_per_s": tokens / sum(e2e),
        "requests": len(e2e),
        "new_tokens_per_request": max_new_tokens,
        "load_s": load_s,
        "peak_rss_mb": rss.peak / 2**20,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0,
        "memory_mb": footprint / 2**20,
        "size_mb": size_on_disk(ref) / 2**20 if Path(ref).exists() else 0.0,
        "device": hardware.device(),
    }
