"""Runs that survive: a real `kill -9` during generation and SFT, then the same command again."""

from __future__ import annotations

import json
import os
import signal
import time

from tests.e2e.conftest import distill, runs, start


def wait_for(condition, timeout: float, process) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "timed out waiting for the run to make progress"
        time.sleep(0.02)


def kill9(process) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def test_generation_resumes_from_its_last_shard(tmp_path):
    workdir = tmp_path / "gen"
    args = [
        "generate",
        "--preset",
        "tiny",
        "--workdir",
        str(workdir),
        "--set",
        "tasks.train_per_family=3000",
        "--set",
        "teacher.shard_size=10",
    ]
    shards = workdir / "partial" / "generate" / "shards"
    with open(tmp_path / "first.log", "w") as log:
        first = start(*args, log=log)
        wait_for(lambda: len(list(shards.glob("shard-*.jsonl"))) >= 5, 120, first)
        kill9(first)
    on_disk = sum(len(p.read_text().splitlines()) for p in shards.glob("shard-*.jsonl"))
    assert 0 < on_disk < 6000 and not (workdir / "manifests" / "generate.json").exists()

    again = distill(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming generation: {on_disk} traces already on disk" in again.stdout
    traces = [json.loads(line) for line in (workdir / "traces" / "all.jsonl").read_text().splitlines()]
    assert len(traces) == 6000
    assert len({(t["problem_id"], t["sample"]) for t in traces}) == 6000
    assert not shards.exists()  # partial work is cleared once the stage is complete


def test_sft_resumes_from_the_last_checkpoint(tmp_path):
    workdir = tmp_path / "sft"
    settings = [
        "--preset",
        "tiny",
        "--workdir",
        str(workdir),
        "--set",
        "sft.max_steps=24",
        "--set",
        "sft.save_steps=4",
        "--set",
        "sft.batch_size=8",
    ]
    assert distill("generate", *settings).returncode == 0
    args = ["sft", *settings]
    checkpoints = workdir / "partial" / "sft"
    with open(tmp_path / "first.log", "w") as log:
        first = start(*args, log=log)
        wait_for(lambda: any(checkpoints.glob("checkpoint-*/trainer_state.json")), 300, first)
        kill9(first)
    saved = max(int(p.parent.name.split("-")[1]) for p in checkpoints.glob("checkpoint-*/trainer_state.json"))
    assert not (workdir / "models" / "sft").exists() and not (workdir / "manifests" / "sft.json").exists()

    again = distill(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming training from" in again.stdout
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["metrics"]["sft"]["resumed_from_step"] >= saved >= 4
    assert (workdir / "models" / "sft" / "model.safetensors").exists()
    stage_runs = [r for r in runs(workdir) if r.data.tags.get("stage") == "sft"]
    assert sorted(r.info.status for r in stage_runs) == ["FINISHED", "KILLED"]
    parents = [r for r in runs(workdir) if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].data.tags.get("resumed") == "true"


def test_a_nan_loss_stops_the_stage_cleanly(tmp_path):
    workdir = tmp_path / "nan"
    failed = distill(
        "run",
        "--preset",
        "tiny",
        "--workdir",
        str(workdir),
        "--set",
        "tasks.train_per_family=20",
        "--set",
        "sft.learning_rate=1e6",
        "--set",
        "sft.logging_steps=1",
    )
    assert failed.returncode == 1
    assert "stage sft failed: NonFiniteLoss: loss became nan at step" in failed.stderr
    assert f"distill run --workdir {workdir}" in failed.stderr
    assert (workdir / "manifests" / "generate.json").exists() and not (workdir / "manifests" / "sft.json").exists()
    (sft_run,) = [r for r in runs(workdir) if r.data.tags.get("stage") == "sft"]
    assert sft_run.info.status == "FAILED" and "NonFiniteLoss" in sft_run.data.tags["error"]


def test_a_stale_config_or_an_incompatible_workdir_is_refused(tmp_path):
    workdir = tmp_path / "old"
    workdir.mkdir()
    (workdir / "config.yaml").write_text("sft:\n  epochs: 3\n")
    stale = distill("eval", "--workdir", str(workdir))
    assert stale.returncode == 2 and "does not fit this version's config schema" in stale.stderr
    assert "unknown config key sft.epochs" in stale.stderr
    (workdir / "workdir.json").write_text('{"layout": 0, "version": "0.0.1"}')
    old = distill("generate", "--preset", "tiny", "--workdir", str(workdir))
    assert old.returncode == 2 and "written by distill 0.0.1 (work dir layout 0)" in old.stderr
