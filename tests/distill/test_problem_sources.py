"""Problem sources: fixture files written here (GSM8K-style JSONL, MATH-style parquet, bad rows and files).

(Named test_problem_sources.py: tests/student/test_sources.py exists, and test directories have no
__init__.py, so two test_sources.py files would collide at collection.)
"""

from __future__ import annotations

import json

import datasets
import pandas as pd
import pytest

from distill.sources import SourceError, load_problems
from distill.verify import judge, verifier_of


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


GSM8K = [
    {"question": "Natalia sold 48 clips in April and half as many in May. How many in all?", "answer": "48/2 = 24\n#### 72"},
    {"question": "A shop sells 1,200 pens a day. How many in 2 days?", "answer": "1,200*2 = 2,400\n#### 2,400"},
    {"question": "No final answer marker here.", "answer": "It is 5."},
    {"question": "", "answer": "#### 3"},
    {"question": "Where is the answer?", "answer": None},
    {"question": "Garbage reference", "answer": "#### }{"},
]


def test_gsm8k_jsonl_takes_the_number_after_the_marker_and_counts_skips(tmp_path):
    path = write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K)
    problems, skipped = load_problems(path, answer_format="gsm8k", family="gsm8k")
    assert [p.answer for p in problems] == ["72", "2400"]
    assert problems[0].id == "gsm8k-train-000001" and problems[0].family == "gsm8k"
    assert problems[0].meta == {"source": path, "split": "train", "row": 1, "verifier": "math"}
    assert skipped == [
        (3, "no '####' in the answer"),
        (4, "no question"),
        (5, "no answer"),
        (6, "reference '}{' cannot be checked by the math verifier"),
    ]
    trace = "<think>\n48 + 24 = 72\n</think>\n\nThey sold \\boxed{72} clips."
    assert judge(trace, problems[0].answer, verifier_of(problems[0])) == (True, [])


def test_math_parquet_takes_the_last_boxed_answer(tmp_path):
    rows = {
        "problem": ["Simplify $\\frac{2}{4}$.", "Find $x$ with $x^2 = 4$, $x > 0$.", "Prove it.", "What set?"],
        "solution": [
            "We get $\\boxed{\\frac{1}{2}}$.",
            "First $x = \\pm 2$, not $\\boxed{-2}$; so $\\boxed{2}$.",
            "It holds, as shown.",
            "The set is $\\fbox{\\{1,2\\}}$.",
        ],
        "unique_id": ["a/1", "a/2", "a/3", "a/4"],
    }
    path = tmp_path / "math.parquet"
    pd.DataFrame(rows).to_parquet(path)
    problems, skipped = load_problems(
        str(path), question="problem", answer="solution", answer_format="boxed", id_column="unique_id"
    )
    assert [(p.id, p.answer) for p in problems] == [("a/1", "\\frac{1}{2}"), ("a/2", "2"), ("a/4", "\\{1,2\\}")]
    assert skipped == [(3, "no \\boxed{} in the solution")]


def test_limit_and_json_arrays(tmp_path):
    path = tmp_path / "plain.json"
    path.write_text(json.dumps([{"q": f"What is {i} + {i}?", "a": 2 * i} for i in range(10)]), encoding="utf-8")
    problems, skipped = load_problems(str(path), question="q", answer="a", limit=3)
    assert [p.answer for p in problems] == ["0", "2", "4"] and skipped == []


def test_other_verifiers_and_code_tests(tmp_path):
    path = write_jsonl(
        tmp_path / "mc.jsonl", [{"question": "Pick one", "answer": "(B)"}, {"question": "Pick", "answer": "maybe"}]
    )
    problems, skipped = load_problems(path, verifier="choice")
    assert problems[0].meta["verifier"] == "choice" and skipped == [
        (2, "reference 'maybe' cannot be checked by the choice verifier")
    ]
    rows = [
        {"prompt": "Add two numbers from stdin.", "tests": [{"input": "2 3\n", "output": "5\n"}]},
        {"prompt": "Write add(a, b).", "tests": json.dumps(["assert add(1, 2) == 3"])},
        {"prompt": "No tests.", "tests": []},
        {"prompt": "Broken tests.", "tests": "[not json"},
    ]
    path = write_jsonl(tmp_path / "code.jsonl", rows)
    problems, skipped = load_problems(path, question="prompt", answer=None, tests="tests", verifier="code")
    assert problems[0].tests == [json.dumps({"stdin": "2 3\n", "stdout": "5\n"})]
    assert problems[1].tests == ["assert add(1, 2) == 3"] and problems[1].answer == ""
    assert skipped == [(3, "no tests"), (4, "tests are not valid JSON")]


def test_bad_files_are_errors_that_name_the_file(tmp_path):
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes('{"question": "caf\u00e9", "answer": "1"}\n'.encode("latin-1"))
    with pytest.raises(SourceError, match=r"latin1\.jsonl: not UTF-8 text"):
        load_problems(str(bad))
    empty = tmp_path / "empty.jsonl"
    for content in (b"", b"\n \n"):
        empty.write_bytes(content)
        with pytest.raises(SourceError, match=r"empty\.jsonl: the file is empty"):
            load_problems(str(empty))
    (tmp_path / "empty.parquet").write_bytes(b"")
    with pytest.raises(SourceError, match=r"empty\.parquet: the file is empty"):
        load_problems(str(tmp_path / "empty.parquet"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "a", "answer": \n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"broken\.jsonl: could not read as jsonl"):
        load_problems(str(broken))
    with pytest.raises(SourceError, match=r"nope\.parquet: no such file"):
        load_problems(str(tmp_path / "nope.parquet"))
    (tmp_path / "data.csv").write_text("question,answer\n", encoding="utf-8")
    with pytest.raises(SourceError, match="unsupported file type '.csv'"):
        load_problems(str(tmp_path / "data.csv"))


def test_a_wrong_column_names_the_column_and_the_ones_there(tmp_path):
    path = write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K)
    with pytest.raises(
        SourceError, match=r"gsm8k\.jsonl: no column 'problem' \(asked for as question\); available columns: question, answer"
    ):
        load_problems(path, question="problem")
    with pytest.raises(SourceError, match="unknown answer_format 'latex'"):
        load_problems(path, answer_format="latex")
    with pytest.raises(SourceError, match="needs an answer column"):
        load_problems(path, answer=None)


def test_hub_failures_are_rephrased(monkeypatch):
    def offline(name, split):
        raise ConnectionError(f"Couldn't reach '{name}' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(
        SourceError, match=r"could not load the Hugging Face dataset 'openai/gsm8k' \(split 'test'\).*Couldn't reach"
    ) as err:
        load_problems("openai/gsm8k", split="test")
    assert "local .jsonl/.json/.parquet file works offline" in str(err.value)
