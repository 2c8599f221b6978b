"""Supervised fine-tuning on verified traces with TRL's `SFTTrainer`."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from datasets import Dataset
from trl import SFTConfig as TRLSFTConfig
from trl import SFTTrainer

from distill import hardware
from student.load import load_model, load_tokenizer
from student.training import adapter, fit, trainer_args


def check(cfg) -> None:
    if cfg.use_liger_kernel and importlib.util.find_spec("liger_kernel") is None:
        raise ValueError("sft.use_liger_kernel is set but liger-kernel is not installed: `pip install liger-kernel` (GPU only)")


def packing_args(requested: bool, attention: str, group_by_length: bool) -> dict[str, Any]:
    """Padding-free packing only where FlashAttention-2 keeps the packed examples apart at no extra cost.

    TRL's BFD packing concatenates examples into rows and passes `position_ids` instead of a padded mask;
    FlashAttention-2 reads them as varlen sequence boundaries. With SDPA, transformers 5 turns the same
    `position_ids` into a dense block-diagonal mask over the whole packed row, exact but quadratic in the
    row's length, so there packing stays off and unpacked batches are grouped by length instead (when
    `group_by_length` is on)."""
    grouped = {"train_sampling_strategy": "group_by_length"} if group_by_length else {}
    if not requested:
        return {"packing": False, **grouped}
    if attention != "flash_attention_2":
        print(
            f"[distill] sft.packing: off, the attention kernel here is {attention}; padding-free packing needs "
            'FlashAttention-2 on a CUDA GPU (`pip install -e ".[gpu]"`)',
            flush=True,
        )
        return {"packing": False, **grouped}
    return {"packing": True, "packing_strategy": "bfd", "padding_free": True}


def loss_summary(log: list[dict[str, Any]]) -> dict[str, float]:
    """The first and the final logged training loss; empty when no step logged one."""
    losses = [entry["loss"] for entry in log if "loss" in entry]
    return {"first_loss": losses[0], "final_loss": losses[-1]} if losses else {}


def train(base: str, rows: Dataset, cfg, out_dir: Path, checkpoints: Path, seed: int, dtype: str) -> dict[str, Any]:
    """Fine-tune `base` on prompt-completion `rows` (loss on the completion only); save to `out_dir`."""
    check(cfg)
    lora = adapter(cfg.lora)  # before any weights load: bad LoRA settings fail at once
    args = TRLSFTConfig(
        **trainer_args(cfg, checkpoints, seed, dtype),
        **packing_args(cfg.packing, hardware.attention(), cfg.group_by_length),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=int(cfg.warmup_ratio * cfg.max_steps),
        max_length=cfg.max_length,
        completion_only_loss=True,
        use_liger_kernel=cfg.use_liger_kernel,
    )
    trainer = SFTTrainer(
        model=load_model(base, dtype),
        args=args,
        train_dataset=rows,
        processing_class=load_tokenizer(base),
        peft_config=lora,
    )
    return fit(trainer, checkpoints, out_dir, base, dtype)
