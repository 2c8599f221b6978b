"""Stage 1: make the problems, have the teacher write traces, verify them and keep the good ones."""

from __future__ import annotations

import mlflow
from tqdm.auto import tqdm

from distill.curate import funnel, verify_traces
from distill.records import Problem, Trace, to_dataset
from distill.tasks import make_problems
from pipelines.config import PipelineConfig
from pipelines.tracking import log_dataset_file
from pipelines.workdir import Workdir, write_jsonl
from teacher.backends import BACKENDS


def run(config: PipelineConfig, workdir: Workdir) -> tuple[dict, dict]:
    tasks, teach = config.tasks, config.teacher
    train = make_problems(tasks.families, tasks.train_per_family, "train", config.seed, tasks.eval_share)
    held_out = make_problems(tasks.families, tasks.eval_per_family, "eval", config.seed, tasks.eval_share)

    if teach.backend not in BACKENDS:
        raise ValueError(f"teacher.backend: unknown backend {teach.backend!r}; available: {', '.join(BACKENDS)}")
    teacher = BACKENDS[teach.backend](seed=config.seed, slip_rate=teach.slip_rate)
    total = len(train) * teach.samples_per_problem
    traces = list(tqdm(teacher.traces(train, teach.samples_per_problem), total=total, desc="teacher", unit="trace"))
    kept, rejected = verify_traces(traces, {p.id: p for p in train})

    datasets = {
        workdir.problems_train: to_dataset(train, Problem),
        workdir.problems_eval: to_dataset(held_out, Problem),
        workdir.traces: to_dataset(traces, Trace),
        workdir.kept: to_dataset(kept, Trace),
        workdir.rejected: to_dataset(rejected, Trace),
    }
    for path, dataset in datasets.items():
        write_jsonl(dataset, path)
        log_dataset_file(path, context=path.parent.name)
    sample = kept[:20]
    mlflow.log_table(
        {"problem_id": [t.problem_id for t in sample], "family": [t.family for t in sample], "text": [t.text for t in sample]},
        "sample_traces.json",
    )
    outputs = {
        "problems_train": workdir.problems_train,
        "problems_eval": workdir.problems_eval,
        "traces": workdir.traces,
        "kept": workdir.kept,
        "rejected": workdir.rejected,
    }
    return {k: str(v) for k, v in outputs.items()}, {"funnel": funnel(traces, kept), "eval_problems": len(held_out)}
