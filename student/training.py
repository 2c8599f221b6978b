"""What SFT and RL share: trainer arguments, a guard against non-finite losses, resumable fitting."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel
from transformers import Trainer, TrainerCallback

from distill import hardware
from student.load import load_model


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


def adapter(lora) -> LoraConfig | None:
    """PEFT's LoRA settings from ours (`pipelines.config.LoraConfig`); None for full fine-tuning."""
    if lora.rank < 0 or lora.alpha < 0 or not 0 <= lora.dropout < 1:
        raise ValueError(f"lora: rank and alpha must be >= 0 and dropout in [0, 1), got {lora}")
    if not lora.rank:
        return None
    if not lora.target_modules:
        raise ValueError('lora.target_modules is empty: name the layers to adapt, or ["all-linear"] for every linear one')
    # PEFT reads "all-linear" only as a bare string: every linear layer except the output head.
    targets = "all-linear" if lora.target_modules == ["all-linear"] else lora.target_modules
    return LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha or 2 * lora.rank,
        lora_dropout=lora.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def merge_adapter(base: str, adapter_dir: Path, out_dir: Path, dtype: str, tokenizer) -> None:
    """Fold a trained LoRA adapter into a fresh copy of its base weights and save a plain model.

    From the saved adapter rather than the trainer's model, which FSDP or ZeRO-3 hold in shards."""
    model = PeftModel.from_pretrained(load_model(base, dtype), str(adapter_dir)).merge_and_unload()
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))


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


def fit(trainer: Trainer, checkpoints: Path, out_dir: Path, base: str, dtype: str) -> dict[str, Any]:
    """Train `base`, resuming from the newest checkpoint (weights, optimizer, scheduler, RNG) if there is one.

    Saves a plain model to `out_dir`: a LoRA adapter is merged into `base` first."""
    trainer.add_callback(StopOnNonFiniteLoss())
    last = last_complete_checkpoint(checkpoints)
    if last:
        print(f"[distill] resuming training from {last}", flush=True)
    trainer.train(resume_from_checkpoint=last)
    # save_model is collective under FSDP/DeepSpeed; only the main process writes
    if isinstance(trainer.accelerator.unwrap_model(trainer.model), PeftModel):
        trainer.save_model(str(checkpoints / "adapter"))
        trainer.accelerator.wait_for_everyone()  # the whole adapter is on disk before the main process merges it
        if trainer.accelerator.is_main_process:
            merge_adapter(base, checkpoints / "adapter", out_dir, dtype, trainer.processing_class)
    else:
        trainer.save_model(str(out_dir))
    trainer.accelerator.wait_for_everyone()  # every process is done before the main one moves the model into place
    return {"log": trainer.state.log_history, "resumed_from_step": int(last.rsplit("-", 1)[1]) if last else 0}
