"""One module per pipeline stage; each has `run(config, workdir) -> (outputs, metrics)`."""

from __future__ import annotations

from pipelines.config import PipelineConfig
from pipelines.workdir import Workdir

# Which stage writes each model variant; "base" is the student before training.
VARIANT_STAGE = {"base": "sft", "sft": "sft", "rl": "rl", "nf4": "quantize", "int8": "quantize"}


def variant_ref(config: PipelineConfig, workdir: Workdir, variant: str) -> str:
    """Where a model variant of this run lives, checking the stage that writes it has run."""
    if variant not in VARIANT_STAGE:
        raise ValueError(f"unknown model variant {variant!r}; expected one of {', '.join(VARIANT_STAGE)}")
    if variant == "base" and config.student.model != "tiny":
        return config.student.model
    return str(workdir.require(workdir.model(variant), VARIANT_STAGE[variant]))
