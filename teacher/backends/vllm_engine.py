"""The `vllm` teacher: an offline vLLM engine for large teachers (`pip install -e ".[vllm]"`).

`n` samples per prompt come from one request (shared prefix cache), the model is split across
`tensor_parallel_size` GPUs, and problems go to the engine `batch_size` at a time so finished traces
reach the store's shards while the rest is generating. `thinking_budget` is not applied here:
`max_tokens` bounds reasoning and answer together, and a completion that never closes `</think>`
is kept as a failed trace.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from distill.records import Problem, Trace
from teacher.prompts import messages
from teacher.traces import from_completion


class VLLMTeacher:
    name = "vllm"

    def __init__(self, cfg, seed: int):
        try:
            from vllm import LLM
        except ImportError:
            raise ImportError('teacher.backend=vllm needs vLLM: pip install -e ".[vllm]" (Linux with a CUDA GPU)') from None
        self.cfg, self.seed = cfg, seed
        dtype = "auto" if cfg.dtype == "auto" else cfg.dtype
        self.llm = LLM(
            model=cfg.model, tensor_parallel_size=cfg.tensor_parallel_size, dtype=dtype, seed=seed, trust_remote_code=False
        )
        self.tokenizer = self.llm.get_tokenizer()

    def traces(self, problems: list[Problem], samples: int) -> Iterator[Trace]:
        from vllm import SamplingParams

        size = max(1, self.cfg.batch_size)
        for start in range(0, len(problems), size):
            batch = problems[start : start + size]
            params = SamplingParams(
                n=samples,
                temperature=self.cfg.temperature,
                top_p=self.cfg.top_p,
                max_tokens=self.cfg.max_tokens,
                seed=self.seed + start,  # reproducible per batch, so a resumed run samples the same way
            )
            prompts = [self.tokenizer.apply_chat_template(messages(p), tokenize=False, add_generation_prompt=True) for p in batch]
            began = time.perf_counter()
            results = self.llm.generate(prompts, params, use_tqdm=False)
            seconds = (time.perf_counter() - began) / max(len(batch) * samples, 1)  # each trace's share of the call
            for problem, result in zip(batch, results, strict=True):
                for sample, out in enumerate(result.outputs):
                    text = out.text
                    head = text.partition("</think>")[0] if "</think>" in text else text
                    thought = len(self.tokenizer.encode(head, add_special_tokens=False))
                    thought = min(thought, len(out.token_ids))
                    yield from_completion(
                        problem,
                        sample,
                        self.name,
                        self.cfg.model,
                        text,
                        reasoning_tokens=thought,
                        answer_tokens=len(out.token_ids) - thought,
                        seconds=seconds,
                        finish_reason=out.finish_reason,
                    )
