"""Running the real `distill` command as a subprocess, with the MLflow store left to the work dir."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import pytest


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


def distill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), capture_output=True, text=True, env=_env(), timeout=900)


def start(*args: str, log) -> subprocess.Popen:
    return subprocess.Popen(command(*args), stdout=log, stderr=subprocess.STDOUT, env=_env())


def store(workdir) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}")


def runs(workdir, experiment: str = "distill-tiny"):
    client = store(workdir)
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id])


@pytest.fixture
def cli():
    return distill
