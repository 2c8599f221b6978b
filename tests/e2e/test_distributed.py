"""The SFT stage under `accelerate launch` with two CPU processes (gloo): one MLflow run, one model."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from tests.e2e.conftest import _env, distill, runs, store

SETTINGS = [
    "--preset",
    "tiny",
    "--set",
    "tasks.train_per_family=50",
    "--set",
    "tasks.eval_per_family=5",
    "--set",
    "sft.max_steps=8",
    "--set",
    "sft.batch_size=8",
    "--set",
    "sft.logging_steps=2",
    "--set",
    "sft.save_steps=100",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(*args: str, processes: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", str(processes)]
    command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    command += ["--main_process_port", str(free_port()), "-m", "pipelines.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=600)


def test_sft_under_two_processes_logs_and_saves_once(tmp_path):
    workdir = tmp_path / "ddp"
    generated = distill("generate", "--workdir", str(workdir), *SETTINGS)
    assert generated.returncode == 0, generated.stderr[-2000:]

    trained = launch("sft", "--workdir", str(workdir), *SETTINGS)
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-3000:]
    # Both processes trained: gloo split each step's batch between them.
    assert trained.stdout.count("[distill] stage sft done") == 1  # the main process alone reports

    metrics = json.loads((workdir / "summary.json").read_text())["metrics"]["sft"]
    assert metrics["final_loss"] < metrics["first_loss"]

    found = runs(workdir)
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    stages = [r.info.run_name for r in found if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and sorted(stages) == ["generate", "sft"]
    sft_run = next(r for r in found if r.info.run_name == "sft")
    assert sft_run.info.status == "FINISHED"
    losses = [m.value for m in store(workdir).get_metric_history(sft_run.info.run_id, "loss")]
    assert len(losses) == 4 and losses[-1] < losses[0]  # HF's MLflow callback logged from rank 0 only

    model = workdir / "models" / "sft"
    assert (model / "model.safetensors").exists() and (model / "config.json").exists()
    assert not list((workdir / "models").glob(".*.tmp"))  # staged once and renamed by rank 0
    assert json.loads((workdir / "manifests" / "sft.json").read_text())["completed"] is True
    assert not (workdir / "partial" / "sft").exists()


def test_stages_that_do_not_train_refuse_several_processes(monkeypatch, tmp_path, capsys):
    from pipelines.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["generate", "--preset", "tiny", "--workdir", str(tmp_path / "w")]) == 2
    assert "only the sft and rl stages train under `accelerate launch`" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
