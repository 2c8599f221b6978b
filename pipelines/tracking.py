"""MLflow wiring: one experiment per pipeline name, one parent run per work dir, a nested run per stage.

The parent run's id is kept in the work dir, so a stage run alone, or a run resumed after a crash,
nests under the same parent instead of leaving an orphan.
"""

from __future__ import annotations

import hashlib
import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.data.meta_dataset import MetaDataset
from mlflow.data.sources import LocalArtifactDatasetSource

from pipelines.config import PipelineConfig
from pipelines.workdir import Workdir, read_json, write_json


def store_uri(db: Path) -> str:
    """`MLFLOW_TRACKING_URI` when set, else a SQLite store in the file `db`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{db.resolve()}"


def tracking_uri(workdir: Workdir) -> str:
    return store_uri(workdir.mlflow_db)


@contextmanager
def pipeline_run(config: PipelineConfig, workdir: Workdir) -> Iterator[mlflow.ActiveRun]:
    mlflow.set_tracking_uri(tracking_uri(workdir))
    mlflow.set_experiment(config.name)
    id_file = workdir.root / "mlflow_run.json"
    digest = config.section_hash(*config.to_dict())
    known = read_json(id_file) if id_file.exists() else {}
    # MLflow params cannot be rewritten, so a changed config gets a new parent run in the same dir.
    previous = known.get("run_id") if known.get("config_hash") == digest else None
    with mlflow.start_run(run_id=previous, run_name=None if previous else workdir.root.name) as run:
        if previous:
            mlflow.set_tag("resumed", "true")
            close_orphans(run.info.run_id)
        else:
            write_json(id_file, {"run_id": run.info.run_id, "config_hash": digest, "tracking_uri": tracking_uri(workdir)})
            mlflow.log_params(config.flat())
            mlflow.log_dict(config.to_dict(), "config.yaml")
        yield run


def close_orphans(parent_id: str) -> None:
    """Stage runs left RUNNING by a killed process are marked KILLED when the pipeline resumes."""
    client = mlflow.MlflowClient()
    experiment = client.get_run(parent_id).info.experiment_id
    query = f"tags.mlflow.parentRunId = '{parent_id}' and attributes.status = 'RUNNING'"
    for orphan in client.search_runs([experiment], filter_string=query):
        client.set_terminated(orphan.info.run_id, status="KILLED")


@contextmanager
def stage_run(stage: str, params: dict[str, Any]) -> Iterator[mlflow.ActiveRun]:
    """A nested run that is marked FAILED, with the error as tag and artifact, if the stage raises."""
    with mlflow.start_run(run_name=stage, nested=True) as run:
        mlflow.set_tag("stage", stage)
        mlflow.log_params(params)
        try:
            yield run
        except BaseException as err:
            mlflow.set_tag("error", f"{type(err).__name__}: {err}"[:5000])
            mlflow.log_text(traceback.format_exc(), "error.txt")
            raise


def log_dataset_file(path: Path, context: str) -> None:
    """Record a dataset file as a run input with the digest of its bytes (no schema inference)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    dataset = MetaDataset(LocalArtifactDatasetSource(str(path.resolve())), name=path.stem, digest=digest)
    mlflow.log_input(dataset, context=context)


def log_metrics(metrics: dict[str, Any], prefix: str = "") -> None:
    """Log every number in a nested dict as `prefix.a.b`; MLflow keys may not hold some characters."""
    flat: dict[str, float] = {}

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, int | float) and not isinstance(node, bool):
            flat[key.replace("@", "_at_")] = float(node)

    walk(metrics, prefix)
    if flat:
        mlflow.log_metrics(flat)
