"""Stage 6: latency and memory of each model variant on fixed prompts from the held-out split."""

from __future__ import annotations

import platform

from distill.records import problems_from
from pipelines.config import PipelineConfig
from pipelines.stages import variant_ref
from pipelines.workdir import Workdir, read_jsonl, write_json
from student.latency import measure


def run(config: PipelineConfig, workdir: Workdir) -> tuple[dict, dict]:
    bench = config.bench
    problems = problems_from(read_jsonl(workdir.require(workdir.problems_eval, "generate")))
    questions = [p.question for p in problems[: bench.prompts]]
    results = {
        variant: measure(
            variant_ref(config, workdir, variant),
            questions,
            config.student.instruction,
            bench.max_new_tokens,
            bench.warmup,
            bench.repeats,
        )
        for variant in bench.variants
    }
    write_json(workdir.latency, {"machine": platform.platform(), "processor": platform.processor(), "variants": results})
    return {"latency": str(workdir.latency)}, results
