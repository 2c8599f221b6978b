"""Supervised fine-tuning on verified traces with TRL's `SFTTrainer`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from trl import SFTConfig as TRLSFTConfig
from trl import SFTTrainer

from student import hardware
from student.load import load_model, load_tokenizer


def train(base: str, rows: Dataset, cfg, out_dir: Path, checkpoints: Path, seed: int, dtype: str) -> list[dict[str, Any]]:
    """Fine-tune `base` on prompt-completion `rows`, save to `out_dir`; returns the trainer's log."""
    args = TRLSFTConfig(
        output_dir=str(checkpoints),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=int(cfg.warmup_ratio * cfg.max_steps),
        max_length=cfg.max_length,
        completion_only_loss=True,
        logging_steps=cfg.logging_steps,
        save_strategy="no",
        report_to=["mlflow"],
        use_cpu=hardware.device() == "cpu",
        bf16=hardware.dtype(dtype) == torch.bfloat16,
        seed=seed,
        data_seed=seed,
    )
    tokenizer = load_tokenizer(base)
    trainer = SFTTrainer(model=load_model(base, dtype), args=args, train_dataset=rows, processing_class=tokenizer)
    trainer.train()
    trainer.save_model(str(out_dir))
    return trainer.state.log_history
