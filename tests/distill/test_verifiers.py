"""Truth tables for the verifiers added beside math and exact: numeric, choice, code; and the one code path."""

from __future__ import annotations

import json

import pytest

from distill.records import Problem
from distill.verify import (
    answer_for,
    check_code,
    check_math,
    check_numeric,
    code_failures,
    extract_code,
    format_problems_for,
    is_correct,
    judge,
    judge_all,
    parse_number,
    reference_parses,
    verifier_of,
)


@pytest.mark.parametrize(
    ("predicted", "reference", "expected"),
    [
        ("1/2", "0.5", True),
        ("\\frac{1}{2}", "0.5", True),
        ("0.5", "\\frac{1}{2}", True),
        ("\\{2,1\\}", "\\{1,2\\}", True),  # sets: order does not matter
        ("(0,1]", "(0, 1]", True),
        ("[0,1)", "(0,1]", False),  # intervals: the brackets do
        ("10\\%", "10", True),  # math-verify reads a percentage both ways
        ("0.1", "10\\%", True),
        ("1081", "1080", False),  # near miss
        ("}{", "3", False),  # garbage prediction: wrong, not an error
        ("", "3", False),
    ],
)
def test_math_truth_table(predicted, reference, expected):
    assert check_math(predicted, reference) is expected


def test_unparseable_references_are_refused_and_detectable():
    with pytest.raises(ValueError, match="does not parse"):
        check_math("1", "}{")
    assert not reference_parses("}{") and not reference_parses("")
    assert reference_parses("\\frac{1}{2}") and reference_parses("(0,1]")


@pytest.mark.parametrize(
    ("predicted", "reference", "expected"),
    [
        ("0.5", "1/2", True),
        ("3/4", "0.75", True),
        ("\\frac{3}{4}", "0.75", True),
        ("-\\dfrac{1}{4}", "-0.25", False),  # a sign outside the fraction is not read: unparseable, wrong
        ("\\dfrac{-1}{4}", "-0.25", True),
        ("1,234", "1234", True),
        ("1,234.5", "1234.5", True),
        ("1,2", "12", False),  # not a thousands separator
        ("$5", "5", True),
        ("x = 2", "2", True),
        ("10%", "0.1", True),
        ("10%", "10", True),
        ("1.0000001", "1", True),  # relative error 1e-7 < 1e-6
        ("1.00001", "1", False),
        ("1e-10", "0", True),  # absolute tolerance 1e-9 near zero
        ("1e-8", "0", False),
        ("1081", "1080", False),
        ("five", "5", False),
        ("1/0", "0", False),
        ("nan", "0", False),
    ],
)
def test_numeric_truth_table(predicted, reference, expected):
    assert check_numeric(predicted, reference) is expected


def test_numeric_tolerance_edges_and_references():
    assert check_numeric("100.5", "100", rel_tol=0.01) and not check_numeric("102", "100", rel_tol=0.01)
    assert parse_number("12.5%") == [12.5, 0.125]
    with pytest.raises(ValueError, match="not a number"):
        check_numeric("1", "abc")
    assert reference_parses("3/4", "numeric") and not reference_parses("about 3", "numeric")


@pytest.mark.parametrize(
    ("predicted", "expected"),
    [
        ("B", True),
        ("b", True),
        ("(B)", True),
        ("B)", True),
        ("B.", True),
        ("**B**", True),
        ("\\text{(B)}", True),
        ("(B) 42", True),
        ("The answer is B", True),
        ("So the answer is (B).", True),
        ("Answer: B", True),
        ("The correct option is B because it doubles.", True),
        ("The answer is C", False),
        ("(A) or (B)", False),
        ("the answer is a prime number", False),  # a lower-case article is not a choice
        ("", False),
    ],
)
def test_choice_forms(predicted, expected):
    assert is_correct(predicted, "B", "choice") is expected


def test_choice_reference_and_extraction():
    with pytest.raises(ValueError, match="not a choice"):
        is_correct("A", "F", "choice")
    assert reference_parses("(C)", "choice") and not reference_parses("maybe", "choice")
    # A base model that never boxes: the final text is graded whole.
    assert answer_for("<think>hmm</think>\n\nThe answer is (D).", "choice") == "The answer is (D)."
    assert answer_for("<think>hmm</think>\n\n\\boxed{D}", "choice") == "D"


CODE = "def add(a, b):\n    return a + b\n"
SOLUTION = f"<think>\nAdd them.\n```python\ndef add(a, b):\n    return 0\n```\n</think>\n\nHere:\n\n```python\n{CODE}```\n"
IO = [json.dumps({"stdin": "2 3\n", "stdout": "5\n"}), json.dumps({"stdin": "10 -4", "stdout": "6"})]
IO_PROGRAM = "a, b = map(int, input().split())\nprint(a + b)\n"


def test_extract_code_takes_the_last_python_block_after_thinking():
    assert extract_code(SOLUTION) == CODE
    text = "</think>\n```python\nx = 1\n```\nOutput:\n```text\n1\n```\nThen:\n```py\nx = 2\n```\n```\n"
    assert extract_code(text) == "x = 2\n"  # the ```text block is not code; the unclosed fence is ignored
    assert extract_code("</think>\n```\nprint(1)\n```") == "print(1)\n"  # untagged blocks count
    assert extract_code("<think>```python\nx = 1\n```</think>\n\nno code") is None
    assert extract_code("</think>\n```python\n\n```") is None


@pytest.mark.parametrize(
    ("program", "tests", "failure"),
    [
        (CODE, ["assert add(2, 3) == 5", "assert add(-1, 1) == 0"], None),
        (
            "def add(a, b):\n    return a - b\n",
            ["assert add(0, 0) == 0", "assert add(2, 3) == 5"],
            "AssertionError at `assert add(2, 3) == 5`",
        ),
        ("def add(a, b):\n    return a +\n", ["assert add(2, 3) == 5"], "SyntaxError"),
        ("def add(a, b):\n    while True:\n        pass\n", ["assert add(2, 3) == 5"], "(1 s)"),  # wall clock or CPU
        (IO_PROGRAM, IO, None),
        ("print(5)\n", IO, "failed io test 2: expected '6', got '5\\n'"),
        ("import sys\nsys.exit(3)\n", IO, "failed io test 1"),
        ("import socket\nsocket.socket()\n", IO, "blocked: socket.__new__"),
    ],
)
def test_code_pass_fail_error_timeout(program, tests, failure):
    failures = code_failures(program, tests, timeout_s=1)
    if failure is None:
        assert failures == [] and check_code(program, tests)
    else:
        assert len(failures) == 1 and failure in failures[0], failures


def test_code_problems_need_well_formed_tests():
    with pytest.raises(ValueError, match="needs tests"):
        check_code(CODE, [])
    with pytest.raises(ValueError, match="not {'stdin'"):
        check_code(CODE, ['{"input": "1"}'])
    assert reference_parses("", "code", ["assert True"]) and not reference_parses("", "code", [])


def test_judge_runs_code_through_the_same_path():
    assert judge(SOLUTION, "", "code", ["assert add(2, 3) == 5"]) == (True, [])
    assert is_correct(answer_for(SOLUTION, "code"), "", "code", tests=["assert add(2, 3) == 5"])
    ok, reasons = judge(SOLUTION, "", "code", ["assert add(2, 3) == 6"])
    assert not ok and reasons[0].startswith("failed test: AssertionError")
    ok, reasons = judge("<think>\nhmm\n</think>\n\nNo code, sorry.", "", "code", ["assert True"])
    assert not ok and reasons == ["no python code block", "no answer found"]
    assert format_problems_for(SOLUTION, "code") == []
    assert format_problems_for(SOLUTION, "math") == ["no boxed answer"]  # text verifiers still want a box


def test_text_verifiers_keep_their_behaviour_through_judge():
    good = "<think>\n0.75\n</think>\n\nSo \\boxed{3/4}."
    assert judge(good, "0.75", "numeric") == (True, [])
    assert judge(good, "0.8", "numeric")[1] == ["wrong answer: '3/4', expected '0.8'"]
    with pytest.raises(ValueError, match="unknown verifier"):
        judge(good, "0.75", "fuzzy")


def test_a_problem_carries_its_verifier():
    assert verifier_of(Problem("p", "custom", "q", "B", meta={"verifier": "choice"})) == "choice"
    assert verifier_of(Problem("p", "letters", "q", "3")) == "exact"
    assert verifier_of(Problem("p", "custom", "q", "3")) == "math"


def test_judge_all_keeps_order_and_runs_code_beside_maths():
    jobs = [
        (SOLUTION, "", "code", ["assert add(2, 3) == 5"]),
        ("<think>\nx\n</think>\n\n\\boxed{1/2}", "0.5", "math", ()),
        (SOLUTION, "", "code", ["assert add(2, 3) == 6"]),
        ("<think>\nx\n</think>\n\n\\boxed{B}", "C", "choice", ()),
    ]
    verdicts = judge_all(jobs, workers=2)
    assert [ok for ok, _ in verdicts] == [True, True, False, False]
    assert verdicts[3][1] == ["wrong answer: 'B', expected 'C'"]
