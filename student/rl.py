"""Reinforcement learning on verifiable rewards with TRL's `GRPOTrainer`."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

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


def train(start: str, prompts: Dataset, cfg, out_dir: Path, checkpoints: Path, seed: int, dtype: str) -> dict[str, Any]:
    """GRPO from `start` on `prompts` (`prompt`, `answer`, `verifier` columns); saves to `out_dir`."""
    check(cfg)
    lora = adapter(cfg.lora)  # before any weights load: bad LoRA settings fail at once
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
    )
    return fit(trainer, checkpoints, out_dir, start, dtype)
