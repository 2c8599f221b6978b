"""Stage 6: latency, throughput and memory of each model variant on fixed prompts from the held-out split,
with each variant's decode speed as a fraction of this machine's memory-bandwidth limit."""

from __future__ import annotations

import platform

import mlflow

from distill.records import problems_from
from pipelines.config import PipelineConfig
from pipelines.stages import check_variants, loadable_ref, variant_ref
from pipelines.workdir import Workdir, read_jsonl, write_json
from student import runtimes
from student.latency import copy_bandwidth, measure, plot


def check(config: PipelineConfig) -> None:
    """Settings read here, checked before any stage starts (`pipelines.run.preflight`)."""
    check_variants(config, "bench.variants", config.bench.variants)
    runtimes.check(config.bench.runtime)


def run(config: PipelineConfig, workdir: Workdir) -> tuple[dict, dict]:
    bench = config.bench
    problems = problems_from(read_jsonl(workdir.require(workdir.problems_eval, "generate")))
    questions = [p.question for p in problems[: bench.prompts]]
    bandwidth = copy_bandwidth()  # once per run, beside the timings it bounds
    results = {}
    for variant in bench.variants:
        ref = variant_ref(config, workdir, variant)
        # llama.cpp reads the GGUF itself; transformers needs it converted first.
        load_ref = None if runtimes.choose(bench.runtime, ref) == "llama_cpp" else loadable_ref(workdir, ref)
        results[variant] = measure(
            ref,
            questions,
            config.student.instruction,
            bench.max_new_tokens,
            bench.warmup,
            bench.repeats,
            concurrency=bench.concurrency,
            percentiles=bench.percentiles,
            runtime=bench.runtime,
            load_ref=load_ref,
            bandwidth=bandwidth,
        )
    machine = {"platform": platform.platform(), "processor": platform.processor(), "copy_bandwidth_gb_s": bandwidth / 1e9}
    write_json(workdir.latency, {"machine": machine, "variants": results})
    figure = plot(results, workdir.latency.with_name("latency.png"))
    mlflow.log_figure(figure, "latency.png")
    mlflow.log_dict({"machine": machine, "variants": results}, "latency.json")
    return {"latency": str(workdir.latency), "latency_plot": str(workdir.latency.with_name("latency.png"))}, results
