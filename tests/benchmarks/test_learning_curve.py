"""benchmarks/learning_curve.py: real SFT steps on the tiny student, graded on held-out problems, logged to MLflow."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))

import learning_curve  # noqa: E402


def test_each_point_is_trained_and_graded_and_logged(tiny_student, tmp_path):
    out = tmp_path / "curve.json"
    args = [
        "--model", tiny_student["dir"], "--steps", "1", "3", "--lr", "1e-3", "--seeds", "0", "1", "--batch-size", "2",
        "--eval-per-family", "2", "--max-new-tokens", "8", "--scratch", str(tmp_path / "models"), "--out", str(out),
    ]  # fmt: skip
    assert learning_curve.main(args) == 0

    report = json.loads(out.read_text())
    assert set(report["base"]) >= {"accuracy", "accuracy.letters", "accuracy.arithmetic", "no_answer.letters"}
    points = report["points"]
    assert [(p["steps"], p["seed"], p["examples"]) for p in points] == [(1, 0, 2), (1, 1, 2), (3, 0, 6), (3, 1, 6)]
    assert all(0.0 <= p["accuracy"] <= 1.0 and p["first_loss"] > 0 for p in points)
    assert (tmp_path / "models" / "steps3-lr0.001-seed1" / "config.json").exists()

    run = mlflow.search_runs(experiment_names=["distill-benchmarks"], output_format="list")[0]
    assert run.data.params["eval_per_family"] == "2"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "lr0.001.seed1.accuracy")
    assert [m.step for m in history] == [2, 6]


def test_training_rows_are_the_stage_rows_one_pass(tiny_student):
    rows = learning_curve.training_rows(5, seed=0, slip_rate=0.1, instruction="Think.")
    assert len(rows) == 5
    assert rows[0]["prompt"][0]["content"].endswith("\nThink.")
    assert "\\boxed{" in rows[0]["completion"][0]["content"]
