"""Latency of one model variant on one runtime: time to first token, per-token times, end-to-end
percentiles, throughput at batch 1 and under concurrency, memory, and speed against the bandwidth limit.

Every request generates exactly `max_new_tokens` greedily, so variants are compared on the same work.
Decoding a token reads every weight once, so on CPU it is bound by memory bandwidth: the machine's copy
bandwidth divided by the bytes of weights gives a ceiling on tokens/s, and `bandwidth_fraction` says
how close a variant gets to it (near 1: nothing left but smaller weights; far below: kernel overhead).
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

from distill import hardware
from student.chat import prompt_messages
from student.load import size_on_disk
from student.runtimes import open_runtime


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
    """Linear interpolation between closest ranks; `q` in [0, 1]."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def copy_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """Bytes per second one array copy moves (read + write), best of `repeats`: the same kind of
    streaming read a decode step does over its weights, measured on this machine in this run."""
    src = np.ones(megabytes * 2**20 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # touch the pages once so the timed copies do not pay for page faults
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def _size(ref: str) -> float:
    path = Path(ref)
    if path.is_file():
        return path.stat().st_size / 2**20
    return size_on_disk(path) / 2**20 if path.is_dir() else 0.0


def _spread(prefix: str, values: list[float], percentiles: list[float]) -> dict[str, float]:
    """`{prefix_p50: ...}` in milliseconds, one key per percentile."""
    return {f"{prefix}_p{q:g}": percentile(values, q / 100) * 1000.0 for q in percentiles} if values else {}


def measure(
    ref: str,
    questions: list[str],
    instruction: str,
    max_new_tokens: int,
    warmup: int,
    repeats: int,
    concurrency: list[int] = (1,),
    percentiles: list[float] = (50, 90, 95, 99),
    runtime: str = "auto",
    load_ref: str | None = None,
    bandwidth: float | None = None,
) -> dict[str, Any]:
    """Time `ref` on `runtime`; `load_ref` is what transformers loads (a GGUF's converted directory).
    `bandwidth` in bytes/s (measured here if not given). Returns flat numbers plus `concurrency.<C>`."""
    if max_new_tokens < 2:
        raise ValueError("max_new_tokens must be at least 2: inter-token latency needs two tokens")
    bandwidth = bandwidth or copy_bandwidth()
    conversations = [prompt_messages(q, instruction) for q in questions]
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    rss_before = psutil.Process().memory_info().rss
    with _PeakRSS() as rss:
        start = time.perf_counter()
        rt = open_runtime(runtime, ref, load_ref)
        load_s = time.perf_counter() - start
        for messages in conversations[:1] * warmup:
            rt.stream(messages, max_new_tokens)
        ttft, itl, e2e, tpot, tokens = [], [], [], [], 0
        for _ in range(repeats):
            for messages in conversations:
                t = rt.stream(messages, max_new_tokens)
                ttft.append(t.stamps[0] - t.begin)
                itl += [b - a for a, b in zip(t.stamps, t.stamps[1:], strict=False)]
                e2e.append(t.stamps[-1] - t.begin)
                tpot.append((t.stamps[-1] - t.stamps[0]) / (len(t.stamps) - 1))
                tokens += len(t.stamps)
        under_load = {str(c): _concurrent(rt, conversations, c, max_new_tokens, repeats) for c in concurrency}
        weight_bytes = rt.weight_bytes()
        runtime_name, batched = rt.name, rt.batched
        rt.close()

    decode_tps = 1.0 / statistics.mean(tpot)  # decode alone, prompt excluded: what the bandwidth limit bounds
    limit = bandwidth / weight_bytes if weight_bytes else 0.0
    return {
        **_spread("ttft_ms", ttft, percentiles),
        "tpot_ms": statistics.mean(tpot) * 1000.0,
        **_spread("itl_ms", itl, percentiles),
        **_spread("latency_ms", e2e, percentiles),
        "tokens_per_s": tokens / sum(e2e),  # batch 1, prompt included
        "decode_tokens_per_s": decode_tps,
        "concurrency": under_load,
        "requests": len(e2e),
        "new_tokens_per_request": max_new_tokens,
        "weight_mb": weight_bytes / 2**20,
        "bandwidth_gb_s": bandwidth / 1e9,
        "limit_tokens_per_s": limit,
        "bandwidth_fraction": decode_tps / limit if limit else 0.0,
        "load_s": load_s,
        "peak_rss_mb": rss.peak / 2**20,
        "peak_rss_added_mb": max(rss.peak - rss_before, 0) / 2**20,  # what this variant added to the process
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0,
        "size_mb": _size(ref),
        "runtime": runtime_name,
        "batched": batched,  # False: the runtime served concurrent requests one after another
        "device": hardware.device(),
    }


def _concurrent(rt, conversations: list[list[dict]], n: int, max_new_tokens: int, repeats: int) -> dict[str, float]:
    """`n` requests submitted together (prompts cycled), `repeats` times: total tokens/s and requests/s."""
    group = [conversations[i % len(conversations)] for i in range(n)]
    tokens, start = 0, time.perf_counter()
    for _ in range(repeats):
        tokens += rt.batch(group, max_new_tokens)
    seconds = time.perf_counter() - start
    return {"tokens_per_s": tokens / seconds, "requests_per_s": n * repeats / seconds, "seconds": seconds}


def plot(variants: dict[str, dict], path: str | Path):
    """Three panels: decode tokens/s against its bandwidth limit, throughput by concurrency, latency
    percentiles. Returns the matplotlib figure (for `mlflow.log_figure`) after saving it as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    names = list(variants)
    fig, (speed, load, lat) = plt.subplots(1, 3, figsize=(15, 4.5))
    x = np.arange(len(names))
    speed.bar(x - 0.2, [variants[n]["decode_tokens_per_s"] for n in names], 0.4, label="measured")
    speed.bar(x + 0.2, [variants[n]["limit_tokens_per_s"] for n in names], 0.4, label="bandwidth limit", alpha=0.5)
    speed.set(xticks=x, xticklabels=names, ylabel="decode tokens/s (batch 1)", title="Decode speed vs. memory-bandwidth limit")
    speed.set_yscale("log")
    speed.legend()
    for n in names:
        levels = sorted(variants[n]["concurrency"], key=int)
        load.plot([int(c) for c in levels], [variants[n]["concurrency"][c]["tokens_per_s"] for c in levels], marker="o", label=n)
    load.set(xlabel="concurrent requests", ylabel="output tokens/s (total)", title="Throughput under concurrency")
    load.legend()
    keys = [k for k in next(iter(variants.values())) if k.startswith("latency_ms_p")]
    width = 0.8 / len(keys)
    for i, key in enumerate(keys):
        lat.bar(x + (i - (len(keys) - 1) / 2) * width, [variants[n][key] for n in names], width, label=key[len("latency_ms_") :])
    lat.set(xticks=x, xticklabels=names, ylabel="end-to-end latency (ms)", title="Request latency percentiles")
    lat.legend()
    for ax in (speed, lat):
        ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return fig
