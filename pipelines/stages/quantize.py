"""Stage 4: bitsandbytes NF4 and int8 versions of the final (RL) student."""

from __future__ import annotations

from pipelines.config import PipelineConfig
from pipelines.workdir import Workdir
from student.load import size_on_disk
from student.quantize import quantize


def run(config: PipelineConfig, workdir: Workdir) -> tuple[dict, dict]:
    source = str(workdir.require(workdir.model("rl"), "rl"))
    outputs, metrics = {}, {"rl": {"size_mb": size_on_disk(source) / 2**20}}
    for method in config.quantize.methods:
        with workdir.staging(workdir.model(method)) as out:
            footprint = quantize(source, out, method)
        outputs[method] = str(workdir.model(method))
        metrics[method] = {"size_mb": size_on_disk(outputs[method]) / 2**20, "memory_mb": footprint / 2**20}
    return outputs, metrics
