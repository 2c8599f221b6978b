"""Stage 4: bitsandbytes NF4 and int8 versions of the final (RL) student, and GGUF files for llama.cpp."""

from __future__ import annotations

from pipelines.config import PipelineConfig
from pipelines.stages import gguf_path
from pipelines.workdir import Workdir
from student.gguf_export import QUANT_TYPES, export_gguf
from student.load import size_on_disk
from student.quantize import METHODS, quantize


def check(config: PipelineConfig) -> None:
    """Settings read here, checked before any stage starts (`pipelines.run.preflight`)."""
    unknown = [m for m in config.quantize.methods if m not in METHODS] + [q for q in config.quantize.gguf if q not in QUANT_TYPES]
    if unknown:
        raise ValueError(
            f"unknown quantization {unknown[0]!r}: quantize.methods takes {', '.join(METHODS)}; "
            f"quantize.gguf takes {', '.join(QUANT_TYPES)}"
        )


def run(config: PipelineConfig, workdir: Workdir) -> tuple[dict, dict]:
    source = str(workdir.require(workdir.model("rl"), "rl"))
    outputs, metrics = {}, {"rl": {"size_mb": size_on_disk(source) / 2**20}}
    for method in config.quantize.methods:
        with workdir.staging(workdir.model(method)) as out:
            footprint = quantize(source, out, method)
        outputs[method] = str(workdir.model(method))
        metrics[method] = {"size_mb": size_on_disk(outputs[method]) / 2**20, "memory_mb": footprint / 2**20}
    for quant in config.quantize.gguf:
        path = export_gguf(source, gguf_path(workdir, quant), quant)  # writes a temp file and renames it: atomic
        outputs[f"gguf-{quant}"] = str(path)
        metrics[f"gguf-{quant}"] = {"size_mb": path.stat().st_size / 2**20}
    return outputs, metrics
