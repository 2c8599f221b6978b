"""Choosing device, dtype and attention kernel at load time from what this machine has."""

from __future__ import annotations

import importlib.util

import torch


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def dtype(name: str = "auto") -> torch.dtype:
    """`auto`: bf16 on GPUs that support it, fp32 elsewhere (CPU bf16 matmuls are slow here)."""
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    choices = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if name not in choices:
        raise ValueError(f"unknown dtype {name!r}; expected auto or one of {sorted(choices)}")
    return choices[name]


def attention() -> str:
    """FlashAttention-2 where the package and a CUDA GPU are both present, otherwise PyTorch SDPA."""
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"
