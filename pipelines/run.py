"""Driving the stages in order: caching by manifest, MLflow runs, the summary.

A stage's manifest holds a key made of its own config sections and the key of the stage before it,
and is written only after the stage finished. `distill run` skips a stage whose manifest key still
matches, so a change to RL settings reruns RL and what follows, not generation or SFT.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow

from distill import __version__
from pipelines import distributed, report, tracking
from pipelines.config import ConfigError, PipelineConfig, save_config
from pipelines.stages import bench, evaluate, generate, quantize, rl, sft
from pipelines.workdir import LAYOUT, Workdir, read_json, write_json


class StageFailed(RuntimeError):
    """A stage raised; completed stages' outputs are intact and a rerun resumes from this one."""

    def __init__(self, stage: str, workdir: Workdir, error: Exception):
        self.stage, self.error = stage, error
        hint = ""
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            hint = f"The disk holding {workdir.root} is full: free space there first. "
        super().__init__(
            f"stage {stage} failed: {type(error).__name__}: {error}\n{hint}"
            f"Completed stages are kept in {workdir.root}; fix the cause, then resume with "
            f"`distill run --workdir {workdir.root}` (it skips the stages already done)."
        )


def nothing_else(config: PipelineConfig) -> tuple[str, ...]:
    return ()


def pick(config: PipelineConfig, names: tuple[str, ...]) -> dict:
    """The flattened config under each of `names`, a section ("student") or a dotted key ("eval.max_new_tokens")."""
    return {k: v for k, v in config.flat().items() if any(k == n or k.startswith(f"{n}.") for n in names)}


@dataclass(frozen=True)
class Stage:
    name: str
    sections: tuple[str, ...]  # the config this stage's output depends on, besides earlier stages
    run: Callable[[PipelineConfig, Workdir], tuple[dict, dict]]
    check: Callable[[PipelineConfig], None]  # raises ValueError on a setting `run` would refuse
    # Config it reads under some settings only (sections or dotted keys): in the key only then, so that a work
    # dir made with such an option off keeps its key, and changes there do not rerun the stage.
    also: Callable[[PipelineConfig], tuple[str, ...]] = nothing_else

    def digest(self, config: PipelineConfig) -> str:
        digest, extra = config.section_hash(*self.sections), pick(config, self.also(config))
        return hashlib.sha256(f"{digest}:{json.dumps(extra, sort_keys=True)}".encode()).hexdigest()[:16] if extra else digest

    def params(self, config: PipelineConfig) -> dict:
        return pick(config, (*self.sections, *self.also(config)))


def curation_student(config: PipelineConfig) -> tuple[str, ...]:
    """`curate.student_solved` runs the base student over the training problems, generating as eval does (the
    batch size, which sets the speed and not the answers, stays out)."""
    return ("student", "eval.max_new_tokens") if config.curate.student_solved else ()


STAGES = (
    Stage("generate", ("seed", "tasks", "source", "teacher", "curate"), generate.run, generate.check, curation_student),
    Stage("sft", ("student", "sft"), sft.run, sft.check),
    Stage("rl", ("rl",), rl.run, rl.check),
    Stage("quantize", ("quantize",), quantize.run, quantize.check),
    Stage("eval", ("eval",), evaluate.run, evaluate.check),
    Stage("bench", ("bench",), bench.run, bench.check),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def preflight(config: PipelineConfig, stages: tuple[str, ...]) -> None:
    """Check the settings of every stage in `stages` before the first starts: a misspelt reward or a variant
    nothing writes is found in seconds, not after an hour of generation and SFT."""
    for stage in STAGES:
        if stage.name in stages:
            try:
                stage.check(config)
            except ValueError as err:
                raise ConfigError(f"{stage.name} settings: {err}") from err


def stage_keys(config: PipelineConfig) -> dict[str, str]:
    keys, previous = {}, __version__
    for stage in STAGES:
        previous = hashlib.sha256(f"{previous}:{stage.digest(config)}".encode()).hexdigest()[:16]
        keys[stage.name] = previous
    return keys


def is_cached(workdir: Workdir, stage: str, key: str) -> bool:
    manifest = workdir.manifest(stage)
    if not manifest.exists():
        return False
    found = read_json(manifest)
    return found.get("completed") is True and found.get("key") == key and found.get("layout") == LAYOUT


def open_partial(workdir: Workdir, stage: str, key: str) -> None:
    """Keep an unfinished stage's partial work only if it was made under the same key."""
    partial, marker = workdir.partial(stage), workdir.partial(stage) / "key.json"
    if partial.exists() and (not marker.exists() or read_json(marker).get("key") != key):
        shutil.rmtree(partial)
    write_json(marker, {"key": key})


def run_stage(stage: Stage, config: PipelineConfig, workdir: Workdir, key: str) -> None:
    """Run one stage under a nested MLflow run; record outputs and metrics, then the manifest, last."""
    print(f"[distill] stage {stage.name}", flush=True)
    workdir.manifest(stage.name).unlink(missing_ok=True)
    open_partial(workdir, stage.name, key)
    distributed.barrier()  # the other processes, if any, start once stale partial work is gone (see `follow`)
    with tracking.stage_run(stage.name, stage.params(config)):
        start = time.perf_counter()
        try:
            outputs, metrics = stage.run(config, workdir)
        except Exception as err:
            raise StageFailed(stage.name, workdir, err) from err
        seconds = time.perf_counter() - start
        tracking.log_metrics(metrics)
        tracking.log_metrics({"seconds": seconds})
    workdir.update_summary(stage.name, outputs, metrics, {"seconds": round(seconds, 2), "key": key})
    write_json(workdir.manifest(stage.name), {"key": key, "version": __version__, "layout": LAYOUT, "completed": True})
    shutil.rmtree(workdir.partial(stage.name))  # checkpoints are large; the finished output replaces them
    print(f"[distill] stage {stage.name} done in {seconds:.1f}s", flush=True)


def run(config: PipelineConfig, root: Path, stages: tuple[str, ...] = STAGE_NAMES, force_from: str | None = None) -> dict:
    """Run `stages` in order. Several stages: skip those whose output is still valid, except from
    `force_from` on. A stage named alone always runs."""
    if force_from is not None and force_from not in STAGE_NAMES:
        raise ConfigError(f"--force: unknown stage {force_from!r}; stages are {', '.join(STAGE_NAMES)}")
    preflight(config, stages)
    workdir = Workdir(root)
    if distributed.is_distributed():
        refused = distributed.refusal(stages[0] if len(stages) == 1 else "run")
        if refused:
            raise ConfigError(refused)
        if not distributed.is_main():
            return follow(config, workdir, stages[0])
    workdir.check_layout()
    save_config(config, workdir.config)
    keys = stage_keys(config)
    forced = set(STAGE_NAMES[STAGE_NAMES.index(force_from) :]) if force_from else set()
    with tracking.pipeline_run(config, workdir):
        for stage in STAGES:
            if stage.name not in stages:
                continue
            if stage.name not in forced and len(stages) > 1 and is_cached(workdir, stage.name, keys[stage.name]):
                print(f"[distill] stage {stage.name}: cached, skipping", flush=True)
                continue
            run_stage(stage, config, workdir, keys[stage.name])
        summary = workdir.load_summary()
        summary["config"] = config.to_dict()
        summary["headline"] = headline(summary["metrics"])
        write_json(workdir.summary, summary)
        tracking.log_metrics(summary["headline"])
        mlflow.log_artifact(str(workdir.summary))
        report.publish(workdir)  # the Model Registry versions, then the HTML report (issue 7)
    return summary


def follow(config: PipelineConfig, workdir: Workdir, name: str) -> dict:
    """A non-main process under `accelerate launch`: train beside the main one; log and write nothing."""
    stage = next(s for s in STAGES if s.name == name)
    distributed.barrier()  # matches the one in `run_stage`
    stage.run(config, workdir)
    return {}


def headline(metrics: dict) -> dict:
    """The numbers a reader wants first: accuracy per variant and family, trace yield, speed."""
    out: dict = {}
    if "generate" in metrics:
        out["trace_yield"] = metrics["generate"]["funnel"]["yield"]
    for variant, table in metrics.get("eval", {}).items():
        out[f"accuracy.{variant}"] = table["overall"]["accuracy"]
        for family, row in table["per_family"].items():
            out[f"accuracy.{variant}.{family}"] = row["accuracy"]
    for variant, row in metrics.get("bench", {}).items():
        out[f"tokens_per_s.{variant}"] = row["tokens_per_s"]
    return out
