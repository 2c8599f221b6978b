"""Reinforcement learning on verifiable rewards with TRL's `GRPOTrainer`."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer
from trl.models import unwrap_model_for_generation

from distill import tools
from distill.rewards import REWARDS
from student.load import load_model, load_tokenizer
from student.training import adapter, fit, trainer_args


def check(cfg) -> None:
    unknown = [name for name in cfg.rewards if name not in REWARDS]
    if unknown:
        raise ValueError(f"rl.rewards: unknown reward {unknown[0]!r}; available rewards: {', '.join(REWARDS)}")
    if len(cfg.reward_weights) != len(cfg.rewards):
        raise ValueError(f"rl.reward_weights has {len(cfg.reward_weights)} weights for {len(cfg.rewards)} rewards")
    if cfg.batch_size % cfg.num_generations:
        raise ValueError(f"rl.batch_size ({cfg.batch_size}) must be a multiple of rl.num_generations ({cfg.num_generations})")
    if cfg.use_vllm and importlib.util.find_spec("vllm") is None:
        raise ValueError('rl.use_vllm is set but vLLM is not installed: `pip install -e ".[vllm]"` (CUDA GPUs only)')
    if cfg.vllm_mode not in ("colocate", "server"):
        raise ValueError(f"rl.vllm_mode must be colocate or server, not {cfg.vllm_mode!r}")


def vllm_args(cfg) -> dict[str, Any]:
    """TRL's vLLM settings: colocate shares the training GPUs; server talks to `trl vllm-serve`."""
    if not cfg.use_vllm:
        return {"use_vllm": False}
    args = {"use_vllm": True, "vllm_mode": cfg.vllm_mode, "vllm_gpu_memory_utilization": cfg.vllm_gpu_memory_utilization}
    if cfg.vllm_mode == "server" and cfg.vllm_server_base_url:
        args["vllm_server_base_url"] = cfg.vllm_server_base_url
    return args


def _complete(model, tokenizer, seqs: list[list[int]], limits: list[int], config) -> list[list[int]]:
    """One sampled `generate` over left-padded `seqs`: each row's new ids, cut at its EOS (kept), at a tool
    call's `</python>` or at its own limit."""
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    batch = tokenizer.pad({"input_ids": seqs}, padding_side="left", return_tensors="pt").to(model.device)
    out = model.generate(
        **batch, generation_config=config, max_new_tokens=max(limits), stop_strings=[tools.CALL_CLOSE], tokenizer=tokenizer
    )
    rows = []
    for row, limit in zip(out[:, batch["input_ids"].shape[1] :].tolist(), limits, strict=True):
        row = row[: row.index(eos) + 1] if eos in row else row
        while row and row[-1] == pad and pad != eos:
            row.pop()
        if row and row[-1] == eos and tools.pending_call(tokenizer.decode(row[:-1], skip_special_tokens=True)) is not None:
            row.pop()  # padding after the call, where the pad token is EOS: the call did not end the answer
        rows.append(row[:limit])
    return rows


def tool_rollouts(prompts: list, trainer: GRPOTrainer) -> dict[str, list]:
    """GRPO's completions with the Python tool in the loop (TRL's `rollout_func`), so RL trains the student as
    it is evaluated: a completion that closes a call gets the sandbox's output after it and goes on sampling.
    The output's tokens stay in the completion, masked out of the loss (`env_mask` 0)."""
    tokenizer, limit = trainer.processing_class, trainer.args.max_completion_length
    prompt_ids = [
        tokenizer.encode(tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True), add_special_tokens=False)
        for p in prompts
    ]
    completions, masks = [[] for _ in prompts], [[] for _ in prompts]
    live = list(range(len(prompts)))
    settings = {"generation_kwargs": trainer.generation_kwargs}
    unwrapped = unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator, **settings)
    with unwrapped as model, torch.no_grad():
        while live:
            limits = [limit - len(completions[i]) for i in live]
            news = _complete(model, tokenizer, [prompt_ids[i] + completions[i] for i in live], limits, trainer.generation_config)
            waiting = []
            for i, new in zip(live, news, strict=True):
                completions[i] += new
                masks[i] += [1] * len(new)
                text = tokenizer.decode(completions[i], skip_special_tokens=True)
                if tools.pending_call(text) is None:
                    continue
                output = tokenizer.encode(tools.answer(text), add_special_tokens=False)[: limit - len(completions[i])]
                completions[i] += output
                masks[i] += [0] * len(output)
                if len(completions[i]) < limit:
                    waiting.append(i)
            live = waiting
    return {"prompt_ids": prompt_ids, "completion_ids": completions, "logprobs": None, "env_mask": masks}


def train(start: str, prompts: Dataset, cfg, out_dir: Path, checkpoints: Path, seed: int, dtype: str) -> dict[str, Any]:
    """GRPO from `start` on `prompts` (`prompt`, `answer`, `verifier` columns); saves to `out_dir`."""
    check(cfg)
    lora = adapter(cfg.lora)  # before any weights load: bad LoRA settings fail at once
    if cfg.use_vllm:
        print("[distill] rl.use_vllm: vLLM samples GRPO's completions without running the Python tool", flush=True)
    args = GRPOConfig(
        **trainer_args(cfg, checkpoints, seed, dtype),
        per_device_train_batch_size=cfg.batch_size,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        beta=cfg.beta,
        reward_weights=cfg.reward_weights,
        **vllm_args(cfg),
    )
    trainer = GRPOTrainer(
        model=load_model(start, dtype),
        reward_funcs=[REWARDS[name] for name in cfg.rewards],
        args=args,
        train_dataset=prompts,
        processing_class=load_tokenizer(start),
        peft_config=lora,
        rollout_func=None if cfg.use_vllm else tool_rollouts,
    )
    return fit(trainer, checkpoints, out_dir, start, dtype)
