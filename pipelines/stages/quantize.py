"""Stage 4: bitsandbytes NF4 and int8 versions of the final (RL) student, and GGUF files for llama.cpp."""

from __future__ import annotations

from distill.records import problems_from, traces_from
from pipelines.config import PipelineConfig
from pipelines.stages import gguf_path
from pipelines.workdir import Workdir, read_jsonl
from student.chat import sft_rows
from student.gguf_export import QUANT_TYPES, export_gguf, is_calibrated
from student.load import load_tokenizer, size_on_disk
from student.quantize import METHODS, quantize


def check(config: PipelineConfig) -> None:
    """Settings read here, checked before any stage starts (`pipelines.run.preflight`)."""
    unknown = [m for m in config.quantize.methods if m not in METHODS] + [q for q in config.quantize.gguf if q not in QUANT_TYPES]
    if unknown:
        raise ValueError(
            f"unknown quantization {unknown[0]!r}: quantize.methods takes {', '.join(METHODS)}; "
            f"quantize.gguf takes {', '.join(QUANT_TYPES)}"
        )
    if config.quantize.calibration < 0:
        raise ValueError(f"quantize.calibration must be a number of traces, 0 or more; got {config.quantize.calibration}")


def run(config: PipelineConfig, workdir: Workdir) -> tuple[dict, dict]:
    source = str(workdir.require(workdir.model("rl"), "rl"))
    outputs, metrics = {}, {"rl": {"size_mb": size_on_disk(source) / 2**20}}
    for method in config.quantize.methods:
        with workdir.staging(workdir.model(method)) as out:
            footprint = quantize(source, out, method)
        outputs[method] = str(workdir.model(method))
        metrics[method] = {"size_mb": size_on_disk(outputs[method]) / 2**20, "memory_mb": footprint / 2**20}
    calibrate = config.quantize.calibration and any(is_calibrated(quant) for quant in config.quantize.gguf)
    calibration = calibration_texts(config, workdir, source) if calibrate else []
    for quant in config.quantize.gguf:
        path = export_gguf(source, gguf_path(workdir, quant), quant, calibration)  # a temp file, renamed: atomic
        outputs[f"gguf-{quant}"] = str(path)
        metrics[f"gguf-{quant}"] = {"size_mb": path.stat().st_size / 2**20}
    return outputs, metrics


def calibration_texts(config: PipelineConfig, workdir: Workdir, source: str) -> list[str]:
    """`quantize.calibration` kept training traces (a seeded sample), as the student reads them in its chat template."""
    kept = read_jsonl(workdir.require(workdir.kept, "generate")).shuffle(seed=config.seed)
    kept = kept.select(range(min(config.quantize.calibration, len(kept))))
    rows = sft_rows(problems_from(read_jsonl(workdir.problems_train)), traces_from(kept), config.student.instruction)
    tokenizer = load_tokenizer(source)
    return [tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False) for row in rows]
