"""Problems from files (GSM8K- and MATH-style fixtures written here) through the tiny pipeline."""

from __future__ import annotations

import json

from datasets import Dataset

from tests.e2e.conftest import distill
from tests.e2e.test_cli import FAST


def _gsm8k_rows(n: int) -> list[dict]:
    rows = [
        {
            "question": f"Tom has {i} apples and buys {i + 3} more. How many apples does he have?",
            "answer": f"He has {i} + {i + 3} = {2 * i + 3} apples.\n#### {2 * i + 3}",
        }
        for i in range(n)
    ]
    rows.append({"question": "A row without an answer."})
    rows.append({"question": "What is x?", "answer": "no final number here"})
    return rows


def test_gsm8k_style_file_runs_through_every_stage(tmp_path):
    data = tmp_path / "gsm8k.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _gsm8k_rows(40)))
    workdir = tmp_path / "run"
    done = distill(
        "run",
        "--preset",
        "tiny",
        "--workdir",
        str(workdir),
        *FAST,
        "--set",
        f"source.path={data}",
        "--set",
        "source.answer_format=gsm8k",
        "--set",
        "source.family=gsm8k",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["metrics"]["generate"]["source_skipped"] == 2
    skipped = json.loads((workdir / "data" / "skipped_rows.json").read_text())
    assert [row["row"] for row in skipped] == [41, 42]
    held_out = [json.loads(line) for line in (workdir / "data" / "problems_eval.jsonl").read_text().splitlines()]
    trained = [json.loads(line) for line in (workdir / "data" / "problems_train.jsonl").read_text().splitlines()]
    gsm_eval = {p["question"] for p in held_out if p["family"] == "gsm8k"}
    gsm_train = {p["question"] for p in trained if p["family"] == "gsm8k"}
    assert gsm_eval and gsm_train and not gsm_eval & gsm_train and len(gsm_eval | gsm_train) == 40
    # The procedural teacher cannot solve outside problems: counted and kept as rejected traces, not a crash.
    rejected = [json.loads(line) for line in (workdir / "traces" / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == len(gsm_train)
    assert all("cannot solve family 'gsm8k'" in r["reasons"][0] for r in rejected)
    results = json.loads((workdir / "eval" / "results.json").read_text())
    assert results["rl"]["per_family"]["gsm8k"]["n"] == len(gsm_eval)


def test_math_style_parquet_is_loaded_with_boxed_answers(tmp_path):
    rows = [
        {"problem": f"Compute ${i}^2$.", "solution": f"We have ${i}^2 = {i * i}$, so \\boxed{{{i * i}}}."} for i in range(2, 30)
    ]
    rows.append({"problem": "Unreadable", "solution": "no box at all"})
    data = tmp_path / "math.parquet"
    Dataset.from_list(rows).to_parquet(str(data))
    workdir = tmp_path / "gen"
    done = distill(
        "generate",
        "--preset",
        "tiny",
        "--workdir",
        str(workdir),
        "--set",
        f"source.path={data}",
        "--set",
        "source.question=problem",
        "--set",
        "source.answer=solution",
        "--set",
        "source.answer_format=boxed",
        "--set",
        "source.family=math",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    problems = [
        json.loads(line)
        for name in ("problems_train", "problems_eval")
        for line in (workdir / "data" / f"{name}.jsonl").read_text().splitlines()
    ]
    math = {p["question"]: p["answer"] for p in problems if p["family"] == "math"}
    assert len(math) == 28 and math["Compute $7^2$."] == "49"
    assert json.loads((workdir / "data" / "skipped_rows.json").read_text())[0]["row"] == 29


def test_a_mapping_to_a_missing_column_names_it(tmp_path):
    data = tmp_path / "q.jsonl"
    data.write_text('{"prompt": "1+1?", "answer": "2"}\n')
    failed = distill("generate", "--preset", "tiny", "--workdir", str(tmp_path / "w"), "--set", f"source.path={data}")
    assert failed.returncode == 1 and "question" in failed.stderr and "prompt" in failed.stderr
