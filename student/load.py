"""Loading a student (full precision or bitsandbytes-quantized) with the right kernels for here."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from distill import hardware
from student.sources import resolve


def load_tokenizer(ref: str) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(resolve(ref))
    # Decoder-only batched generation needs the prompts flush against the new tokens.
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(ref: str, dtype: str = "auto", quantization=None) -> PreTrainedModel:
    """Weights as safetensors only, no remote code; bitsandbytes configs place the model themselves."""
    path = resolve(ref)
    kwargs = {"dtype": hardware.dtype(dtype), "attn_implementation": hardware.attention(), "use_safetensors": True}
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    # bitsandbytes places weights as it loads them: a new quantization or a saved quantized model.
    placed = quantization is not None or is_quantized(path)
    if placed:
        kwargs["device_map"] = hardware.device()
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if not placed:
        model.to(hardware.device())
    return model.eval()


def is_quantized(path: str) -> bool:
    config = Path(path) / "config.json"
    return config.exists() and "quantization_config" in json.loads(config.read_text())


def size_on_disk(path: str | Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
