"""bitsandbytes NF4 and int8 versions of a student, saved with `save_pretrained` and reloadable."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BitsAndBytesConfig

from distill import hardware
from student.load import load_model, load_tokenizer

METHODS = ("nf4", "int8")


def bnb_config(method: str) -> BitsAndBytesConfig:
    if method == "nf4":
        compute = torch.bfloat16 if hardware.dtype() == torch.bfloat16 else torch.float32
        return BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute
        )
    if method == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise ValueError(f"unknown quantization method {method!r}; expected one of {', '.join(METHODS)}")


def quantize(source: str, out_dir: Path, method: str) -> int:
    """Quantize `source` into `out_dir`; returns the model's memory footprint in bytes."""
    model = load_model(source, quantization=bnb_config(method))
    model.save_pretrained(str(out_dir))
    load_tokenizer(source).save_pretrained(str(out_dir))
    return model.get_memory_footprint()
