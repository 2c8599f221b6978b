"""Shared fixtures: a tiny student saved on disk, built the way the `tiny` preset builds it."""

from __future__ import annotations

import os
import random

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory):
    """A random tiny Llama and its BPE tokenizer trained on real traces; returns the directory."""
    from distill.tasks import make_problems
    from student.chat import sft_rows
    from student.tiny import build_model, build_tokenizer
    from teacher.backends import ProceduralTeacher

    problems = make_problems(["letters", "arithmetic"], 40, "train", seed=0)
    traces = list(ProceduralTeacher(seed=0, slip_rate=0.2).traces(problems, 1))
    rows = sft_rows(problems, traces, "")
    tokenizer = build_tokenizer([r["prompt"][0]["content"] + r["completion"][0]["content"] for r in rows], 512)
    model = build_model(tokenizer, hidden=64, layers=2, heads=2, seed=0)
    out = tmp_path_factory.mktemp("tiny_student")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    random.Random(0).shuffle(rows)
    return {"dir": str(out), "rows": rows, "problems": problems}


@pytest.fixture(autouse=True)
def mlflow_in_tmp(tmp_path, monkeypatch):
    """Trainers log to MLflow; outside a pipeline that would land in the working directory."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
