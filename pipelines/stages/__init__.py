"""One module per pipeline stage; each has `run(config, workdir) -> (outputs, metrics)`."""

from __future__ import annotations

from pathlib import Path

from pipelines.config import PipelineConfig
from pipelines.workdir import Workdir
from student.gguf_export import QUANT_TYPES

# Which stage writes each model variant; "base" is the student before training. GGUF variants are
# files (`models/gguf/student-<q>.gguf`), the others save_pretrained directories.
VARIANT_STAGE = {
    "base": "sft",
    "sft": "sft",
    "rl": "rl",
    "nf4": "quantize",
    "int8": "quantize",
    **{f"gguf-{q}": "quantize" for q in QUANT_TYPES},
}


def check_variants(config: PipelineConfig, key: str, variants: list[str]) -> None:
    """Each of `variants` (the setting `key`) is one this run writes: a quantized one needs its quantize setting."""
    quantized = {*config.quantize.methods, *(f"gguf-{q}" for q in config.quantize.gguf)}
    written = {v for v, stage in VARIANT_STAGE.items() if stage != "quantize"} | quantized
    for variant in variants:
        if variant not in VARIANT_STAGE:
            raise ValueError(f"{key}: unknown model variant {variant!r}; expected one of {', '.join(VARIANT_STAGE)}")
        if variant not in written:
            setting = "quantize.gguf" if variant.startswith("gguf-") else "quantize.methods"
            raise ValueError(f"{key} names {variant!r}, which this run does not write: {setting} does not list it")


def gguf_path(workdir: Workdir, quant: str) -> Path:
    return workdir.model("gguf") / f"student-{quant}.gguf"


def variant_ref(config: PipelineConfig, workdir: Workdir, variant: str) -> str:
    """Where a model variant of this run lives, checking the stage that writes it has run."""
    if variant not in VARIANT_STAGE:
        raise ValueError(f"unknown model variant {variant!r}; expected one of {', '.join(VARIANT_STAGE)}")
    if variant == "base" and config.student.model != "tiny":
        return config.student.model
    if variant.startswith("gguf-"):
        return str(workdir.require(gguf_path(workdir, variant.removeprefix("gguf-")), VARIANT_STAGE[variant]))
    return str(workdir.require(workdir.model(variant), VARIANT_STAGE[variant]))


def loadable_ref(workdir: Workdir, ref: str) -> str:
    """What transformers loads for `ref`. A GGUF file is dequantized once into safetensors, cached in
    the work dir rather than the user's model cache: every re-export is a new file (the cache key holds
    its path, size and mtime), and stale copies should go when the run's directory does."""
    if not ref.lower().endswith(".gguf"):
        return ref
    from student.sources import resolve

    return resolve(ref, cache_dir=workdir.root / "cache" / "gguf")
