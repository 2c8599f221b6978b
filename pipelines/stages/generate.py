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
from teacher.store import TraceStore


def generate_missing(teacher, store: TraceStore, problems: list[Problem], samples: int) -> list[Trace]:
    """Ask the teacher only for what the store lacks; a rerun after a crash picks up where it stopped."""
    done = store.done()
    if done:
        print(f"[distill] resuming generation: {len(done)} traces already on disk", flush=True)
    pending = [p for p in problems if any((p.id, s) not in done for s in range(samples))]
    with tqdm(total=len(problems) * samples, initial=len(done), desc="teacher", unit="trace") as bar:
        for trace in teacher.traces(pending, samples):
            if (trace.problem_id, trace.sample) not in done:
                store.add(trace)
                bar.update()
    return store.traces()


def run(config: PipelineConfig, workdir: Workdir) -> tuple[dict, dict]:
    tasks, teach = config.tasks, config.teacher
    train = make_problems(tasks.families, tasks.train_per_family, "train", config.seed, tasks.eval_share)
    held_out = make_problems(tasks.families, tasks.eval_per_family, "eval", config.seed, tasks.eval_share)

    if teach.backend not in BACKENDS:
        raise ValueError(f"teacher.backend: unknown backend {teach.backend!r}; available: {', '.join(BACKENDS)}")
    teacher = BACKENDS[teach.backend](seed=config.seed, slip_rate=teach.slip_rate)
    store = TraceStore(workdir.partial("generate") / "shards", teach.shard_size)
    traces = generate_missing(teacher, store, train, teach.samples_per_problem)
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
