"""Inference runtimes the latency benchmark times: transformers always; llama.cpp and vLLM when installed.

Each runtime answers the same three questions on chat messages, greedily and for exactly
`max_new_tokens` (end-of-sequence is suppressed), so variants and runtimes do the same work:
- `stream`: one request at batch 1, with a timestamp for every token as it lands;
- `batch`: several requests at once (the runtime's own batching), returns tokens generated;
- `weight_bytes`: what one decode step reads, for the memory-bandwidth limit.

    rt = open_runtime("auto", "models/gguf/student-q4_0.gguf")   # llama.cpp if it imports, else transformers
"""

from __future__ import annotations

import gc
import importlib.util
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

RUNTIMES = ("auto", "transformers", "llama_cpp", "vllm")


@dataclass
class Timing:
    """One request: when it began, when each new token landed (perf_counter seconds)."""

    begin: float
    stamps: list[float] = field(default_factory=list)


def installed(runtime: str) -> bool:
    return runtime == "transformers" or importlib.util.find_spec({"llama_cpp": "llama_cpp", "vllm": "vllm"}[runtime]) is not None


def is_gguf(ref: str) -> bool:
    return str(ref).lower().endswith(".gguf") and Path(ref).is_file()


def check(runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    if runtime != "auto" and not installed(runtime):
        extra = {"llama_cpp": 'pip install -e ".[gguf]" (builds llama.cpp from source)', "vllm": "pip install vllm (GPU)"}
        raise ValueError(f"runtime {runtime} is not installed: {extra[runtime]}")


def choose(runtime: str, ref: str) -> str:
    """`auto`: llama.cpp for a GGUF file when it is installed (the runtime GGUF is made for), else transformers."""
    check(runtime)
    if runtime == "auto":
        return "llama_cpp" if is_gguf(ref) and installed("llama_cpp") else "transformers"
    if runtime == "llama_cpp" and not is_gguf(ref):
        raise ValueError(f"the llama_cpp runtime needs a .gguf file, got {ref}")
    return runtime


def open_runtime(runtime: str, ref: str, load_ref: str | None = None):
    """`load_ref`: what transformers loads instead of `ref` (a GGUF already converted to safetensors)."""
    name = choose(runtime, ref)
    if name == "llama_cpp":
        return LlamaCppRuntime(ref)
    if name == "vllm":
        return VllmRuntime(load_ref or ref)
    return TransformersRuntime(load_ref or ref)


class _TokenClock(StoppingCriteria):
    """Called once per generated step: stamps the clock, never stops generation."""

    def __init__(self):
        self.stamps: list[float] = []

    def __call__(self, input_ids, scores, **kwargs):
        self.stamps.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


class TransformersRuntime:
    name = "transformers"
    batched = True

    def __init__(self, ref: str):
        from student.load import load_model, load_tokenizer

        self.model, self.tokenizer = load_model(ref), load_tokenizer(ref)

    def _encode(self, conversations: list[list[dict]]):
        prompts = [self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in conversations]
        return self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)

    def _generate(self, enc, max_new_tokens: int, clock: _TokenClock | None = None):
        return self.model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens,  # suppresses EOS: every request does the same work
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            stopping_criteria=StoppingCriteriaList([clock]) if clock else None,
        )

    @torch.inference_mode()
    def stream(self, messages: list[dict], max_new_tokens: int) -> Timing:
        enc = self._encode([messages])
        clock, begin = _TokenClock(), time.perf_counter()
        self._generate(enc, max_new_tokens, clock)
        return Timing(begin, clock.stamps)

    @torch.inference_mode()
    def batch(self, conversations: list[list[dict]], max_new_tokens: int) -> int:
        enc = self._encode(conversations)
        out = self._generate(enc, max_new_tokens)
        return (out.shape[1] - enc["input_ids"].shape[1]) * len(conversations)

    def weight_bytes(self) -> int:
        # Parameters and buffers as they sit in memory; for bitsandbytes the packed size.
        return self.model.get_memory_footprint()

    def close(self) -> None:
        del self.model
        gc.collect()


class LlamaCppRuntime:
    """llama-cpp-python on the GGUF file itself: the quantized kernels, not a dequantized copy."""

    name = "llama_cpp"
    batched = False  # the high-level API decodes one sequence at a time, so `batch` runs requests in turn

    def __init__(self, path: str, n_ctx: int = 2048):
        from llama_cpp import Llama, LogitsProcessorList
        from transformers import AutoTokenizer

        # All cores: on CPU llama.cpp is bound by memory bandwidth, and more threads reach more of it.
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=os.cpu_count(), verbose=False)
        # The chat template travels in the GGUF; transformers reads it (and the vocabulary) without the weights.
        self.tokenizer = AutoTokenizer.from_pretrained(str(Path(path).parent), gguf_file=Path(path).name)
        eos = self.llm.token_eos()

        def no_eos(input_ids, scores):
            scores[eos] = -float("inf")
            return scores

        self._processors = LogitsProcessorList([no_eos])
        self._path = Path(path)

    def _tokens(self, messages: list[dict]) -> list[int]:
        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.llm.tokenize(prompt.encode(), add_bos=False, special=True)

    def stream(self, messages: list[dict], max_new_tokens: int) -> Timing:
        tokens = self._tokens(messages)
        self.llm.reset()  # no prefix reuse from the previous request: every request pays its prompt
        timing = Timing(time.perf_counter())
        # `generate` samples forever; we stop it ourselves after exactly max_new_tokens.
        for _ in self.llm.generate(tokens, temp=0.0, top_k=1, reset=True, logits_processor=self._processors):
            timing.stamps.append(time.perf_counter())
            if len(timing.stamps) >= max_new_tokens:
                break
        return timing

    def batch(self, conversations: list[list[dict]], max_new_tokens: int) -> int:
        return sum(len(self.stream(m, max_new_tokens).stamps) for m in conversations)

    def weight_bytes(self) -> int:
        return self._path.stat().st_size  # the tensors are mapped from the file as they are

    def close(self) -> None:
        self.llm.close()
        gc.collect()


class VllmRuntime:
    """vLLM (GPU). Its offline API gives no per-token callback, so `stream` stamps only the first and
    last token from vLLM's own request metrics, spreading the rest evenly (TPOT exact, ITL spread lost)."""

    name = "vllm"
    batched = True

    def __init__(self, ref: str):
        from vllm import LLM

        self.llm = LLM(model=ref, enforce_eager=False, gpu_memory_utilization=0.5)

    def _params(self, max_new_tokens: int):
        from vllm import SamplingParams

        return SamplingParams(max_tokens=max_new_tokens, min_tokens=max_new_tokens, temperature=0.0)

    def stream(self, messages: list[dict], max_new_tokens: int) -> Timing:
        wall, begin = time.time(), time.perf_counter()
        (out,) = self.llm.chat([messages], self._params(max_new_tokens), use_tqdm=False)
        end, n = time.perf_counter(), len(out.outputs[0].token_ids)
        metrics = getattr(out, "metrics", None)
        first_wall = getattr(metrics, "first_token_time", None)
        first = begin + (first_wall - wall) if first_wall else end
        step = (end - first) / max(n - 1, 1)
        return Timing(begin, [first + i * step for i in range(n)])

    def batch(self, conversations: list[list[dict]], max_new_tokens: int) -> int:
        outs = self.llm.chat(conversations, self._params(max_new_tokens), use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outs)

    def weight_bytes(self) -> int:
        # vLLM keeps the module behind its engine, reachable only on some versions; 0 means "unknown".
        try:
            model = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        except AttributeError:
            return 0
        return sum(p.numel() * p.element_size() for p in model.parameters())

    def close(self) -> None:
        del self.llm
        gc.collect()
