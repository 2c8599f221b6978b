"""What SFT and RL share: trainer arguments, a guard against non-finite losses, resumable fitting."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from distill import hardware


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(TrainerCallback):
    """Stop at the first NaN or infinite loss instead of training on garbage for hours."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise NonFiniteLoss(
                f"loss became {loss} at step {state.global_step}; lower the learning rate "
                f"(it is {args.learning_rate:g}) or check the data"
            )


def trainer_args(cfg, checkpoints: Path, seed: int, dtype: str) -> dict[str, Any]:
    """Arguments common to TRL's SFT and GRPO configs, from our stage config."""
    return {
        "output_dir": str(checkpoints),
        "max_steps": cfg.max_steps,
        "learning_rate": cfg.learning_rate,
        "logging_steps": cfg.logging_steps,
        "logging_nan_inf_filter": False,  # the filter would log a NaN loss as the window's mean, hiding it
        "disable_tqdm": False,  # the Trainer hides its progress bar (and time left) when transformers logs errors only
        "save_strategy": "steps",
        "save_steps": cfg.save_steps,
        "save_total_limit": 1,  # the last checkpoint is all a resume needs
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "report_to": ["mlflow"],
        "use_cpu": hardware.device() == "cpu",
        "bf16": hardware.dtype(dtype) == torch.bfloat16,
        "seed": seed,
        "data_seed": seed,
    }


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint whose trainer state (written last) is whole; a half-saved one is skipped."""
    steps = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]), reverse=True)
    for path in steps:
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        return str(path)
    return None


def fit(trainer: Trainer, checkpoints: Path, out_dir: Path) -> dict[str, Any]:
    """Train, resuming from the newest checkpoint (weights, optimizer, scheduler, RNG) if there is one."""
    trainer.add_callback(StopOnNonFiniteLoss())
    last = last_complete_checkpoint(checkpoints)
    if last:
        print(f"[distill] resuming training from {last}", flush=True)
    trainer.train(resume_from_checkpoint=last)
    trainer.save_model(str(out_dir))  # collective under FSDP/DeepSpeed; only the main process writes
    trainer.accelerator.wait_for_everyone()  # every process is done before the main one moves the model into place
    return {"log": trainer.state.log_history, "resumed_from_step": int(last.rsplit("-", 1)[1]) if last else 0}
