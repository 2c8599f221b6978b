"""Supervised fine-tuning on verified traces with TRL's `SFTTrainer`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset
from trl import SFTConfig as TRLSFTConfig
from trl import SFTTrainer

from student.load import load_model, load_tokenizer
from student.training import fit, trainer_args


def train(base: str, rows: Dataset, cfg, out_dir: Path, checkpoints: Path, seed: int, dtype: str) -> dict[str, Any]:
    """Fine-tune `base` on prompt-completion `rows` (loss on the completion only); save to `out_dir`."""
    args = TRLSFTConfig(
        **trainer_args(cfg, checkpoints, seed, dtype),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=int(cfg.warmup_ratio * cfg.max_steps),
        max_length=cfg.max_length,
        completion_only_loss=True,
    )
    trainer = SFTTrainer(model=load_model(base, dtype), args=args, train_dataset=rows, processing_class=load_tokenizer(base))
    return fit(trainer, checkpoints, out_dir)
