"""The layout of a run's work directory, and the small JSON files that describe it.

Every stage reads its inputs from, and writes its outputs to, fixed places here, so any stage can run
alone after the ones before it. JSON files are written to a temporary name and renamed, so a crash
never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset

from distill import __version__
from pipelines import distributed

# Bump when files move or change meaning: older work dirs are then refused with a clear message.
LAYOUT = 1


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_jsonl(dataset: Dataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if len(dataset):
        dataset.to_json(str(tmp), lines=True, force_ascii=False)
    else:  # `to_json` cannot write an empty dataset
        tmp.write_text("", encoding="utf-8")
    os.replace(tmp, path)


def read_jsonl(path: Path) -> Dataset:
    if path.stat().st_size == 0:
        return Dataset.from_list([])
    return Dataset.from_json(str(path))


class MissingInput(FileNotFoundError):
    """A stage was run before the stage that makes its input."""


class IncompatibleWorkdir(RuntimeError):
    """A work dir whose layout this version does not read."""


@dataclass(frozen=True)
class Workdir:
    root: Path

    def __post_init__(self):
        self.root.mkdir(parents=True, exist_ok=True)

    # Data and traces (generate)
    @property
    def problems_train(self) -> Path:
        return self.root / "data" / "problems_train.jsonl"

    @property
    def problems_eval(self) -> Path:
        return self.root / "data" / "problems_eval.jsonl"

    @property
    def traces(self) -> Path:
        return self.root / "traces" / "all.jsonl"

    @property
    def kept(self) -> Path:
        return self.root / "traces" / "kept.jsonl"

    @property
    def skipped(self) -> Path:
        return self.root / "data" / "skipped_rows.json"

    @property
    def pass_rates(self) -> Path:
        return self.root / "data" / "pass_rates.json"

    @property
    def student_answers(self) -> Path:
        return self.root / "data" / "student_answers.json"

    @property
    def rejected(self) -> Path:
        return self.root / "traces" / "rejected.jsonl"

    def model(self, variant: str) -> Path:
        return self.root / "models" / variant

    def partial(self, stage: str) -> Path:
        """Resumable work of an unfinished stage (trace shards, trainer checkpoints)."""
        return self.root / "partial" / stage

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"

    @property
    def latency(self) -> Path:
        return self.root / "bench" / "latency.json"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    def manifest(self, stage: str) -> Path:
        return self.root / "manifests" / f"{stage}.json"

    def require(self, path: Path, stage: str) -> Path:
        if not path.exists():
            raise MissingInput(f"{path} does not exist: run `distill {stage} --workdir {self.root}` first (or `distill run`)")
        return path

    @contextmanager
    def staging(self, final: Path) -> Iterator[Path]:
        """A temporary directory that replaces `final` only once everything in it is written.

        Under several processes only the main one makes, clears and renames it; the others get its path
        (a trainer saves on the main process only) and leave the disk alone."""
        tmp = final.with_name(f".{final.name}.tmp")
        if not distributed.is_main():
            yield tmp
            return
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)

    def check_layout(self) -> None:
        """Refuse a work dir written by a version whose files this one cannot read."""
        marker = self.root / "workdir.json"
        if not marker.exists():
            write_json(marker, {"layout": LAYOUT, "version": __version__})
            return
        found = read_json(marker)
        if found.get("layout") != LAYOUT:
            raise IncompatibleWorkdir(
                f"{self.root} was written by distill {found.get('version')} (work dir layout {found.get('layout')}); "
                f"this is distill {__version__} (layout {LAYOUT}). Use a new --workdir, or the version that wrote it."
            )

    def load_summary(self) -> dict[str, Any]:
        return read_json(self.summary) if self.summary.exists() else {"outputs": {}, "metrics": {}, "stages": {}}

    def update_summary(self, stage: str, outputs: dict[str, Any], metrics: dict[str, Any], info: dict[str, Any]) -> None:
        summary = self.load_summary()
        summary["outputs"][stage] = outputs
        summary["metrics"][stage] = metrics
        summary["stages"][stage] = info
        write_json(self.summary, summary)
