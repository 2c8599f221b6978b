"""Stage 1: make the problems, have the teacher write traces, verify them and keep the good ones."""

from __future__ import annotations

import mlflow
from tqdm.auto import tqdm

from distill.curate import curate, funnel
from distill.filters import check as check_filters
from distill.filters import pass_rates
from distill.records import Problem, Trace, to_dataset
from distill.sources import load_problems
from distill.tasks import check as check_families
from distill.tasks import make_problems, split_of
from pipelines.config import PipelineConfig
from pipelines.stages import loadable_ref
from pipelines.stages.sft import build_tiny
from pipelines.tracking import log_dataset_file
from pipelines.workdir import Workdir, write_json, write_jsonl
from student.evaluate import evaluate
from teacher.backends import check as check_teacher
from teacher.backends import make_teacher
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


def source_problems(config: PipelineConfig) -> tuple[list[Problem], list[Problem], list[tuple[int, str]]]:
    """Problems from `source.path`, split by a stable hash of the question like the built-in families."""
    src = config.source
    if not src.path:
        return [], [], []
    problems, skipped = load_problems(
        src.path,
        split=src.split,
        question=src.question,
        answer=src.answer or None,
        answer_format=src.answer_format,
        family=src.family,
        verifier=src.verifier,
        limit=src.limit or None,
        tests=src.tests or None,
        id_column=src.id_column or None,
    )
    split = {p.id: split_of(p.question, config.tasks.eval_share) for p in problems}
    return [p for p in problems if split[p.id] == "train"], [p for p in problems if split[p.id] == "eval"], skipped


def student_solved(config: PipelineConfig, workdir: Workdir, train: list[Problem], traces: list[Trace]) -> set[str] | None:
    """For `curate.student_solved`: the training problems the base student already answers, greedy, one attempt,
    graded as eval grades (every answer goes to data/student_answers.json); None when the option is off."""
    if not config.curate.student_solved:
        return None
    if config.student.model == "tiny":  # SFT builds it from the kept traces; a stand-in made the same way, from all
        stand_in = workdir.partial("generate") / "student"
        build_tiny(config, [p.question for p in train] + [t.text for t in traces], stand_in)
        ref = str(stand_in)
    else:
        ref = loadable_ref(workdir, config.student.model)
    cfg = config.eval
    answers, _ = evaluate(ref, train, config.student.instruction, cfg.max_new_tokens, cfg.batch_size, desc="student_solved")
    write_json(workdir.student_answers, answers)
    columns = ("id", "family", "predicted", "answer", "correct")
    mlflow.log_table({k: [a[k] for a in answers] for k in columns}, "student_answers.json")
    return {a["id"] for a in answers if a["correct"]}


def log_funnel(stages: list[tuple[str, int]]) -> None:
    """The curation funnel as a bar chart: how many traces survive each filter."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.5))
    axes.bar([name for name, _ in stages], [count for _, count in stages], color="#4c72b0")
    axes.set_ylabel("traces")
    axes.set_title("curation funnel")
    axes.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    mlflow.log_figure(figure, "funnel.png")
    plt.close(figure)


def check(config: PipelineConfig) -> None:
    """Settings read here, checked before any stage starts (`pipelines.run.preflight`)."""
    check_families(config.tasks.families)
    check_teacher(config.teacher)
    check_filters(config.curate)


def run(config: PipelineConfig, workdir: Workdir) -> tuple[dict, dict]:
    tasks, teach = config.tasks, config.teacher
    extra_train, extra_eval, skipped = source_problems(config)
    train = make_problems(tasks.families, tasks.train_per_family, "train", config.seed, tasks.eval_share) + extra_train
    held_out = make_problems(tasks.families, tasks.eval_per_family, "eval", config.seed, tasks.eval_share) + extra_eval

    teacher = make_teacher(teach, config.seed)
    store = TraceStore(workdir.partial("generate") / "shards", teach.shard_size)
    traces = generate_missing(teacher, store, train, teach.samples_per_problem)
    by_id = {p.id: p for p in train}
    solved = student_solved(config, workdir, train, traces)
    kept, rejected, stages = curate(traces, by_id, [p.question for p in held_out], config.curate, solved)

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
    write_json(workdir.skipped, [{"row": row, "reason": reason} for row, reason in skipped])
    # How many of the teacher's samples verified, per problem: a difficulty signal for filters and RL.
    rates = pass_rates(traces)
    write_json(workdir.pass_rates, rates)
    sample = kept[:20]
    mlflow.log_table(
        {"problem_id": [t.problem_id for t in sample], "family": [t.family for t in sample], "text": [t.text for t in sample]},
        "sample_traces.json",
    )
    log_funnel(stages)
    outputs = {
        name: str(path)
        for name, path in [
            ("problems_train", workdir.problems_train),
            ("problems_eval", workdir.problems_eval),
            ("traces", workdir.traces),
            ("kept", workdir.kept),
            ("rejected", workdir.rejected),
            ("skipped", workdir.skipped),
            ("pass_rates", workdir.pass_rates),
        ]
    }
    metrics = {
        "funnel": funnel(traces, kept) | {f"after_{name}": count for name, count in stages},
        "eval_problems": len(held_out),
        "source_skipped": len(skipped),
        "mean_pass_rate": sum(rates.values()) / max(len(rates), 1),
        "solved_problems": sum(rate > 0 for rate in rates.values()),
    }
    if solved is not None:
        outputs["student_answers"] = str(workdir.student_answers)
        metrics["student_solved_problems"] = len(solved)
    return outputs, metrics
