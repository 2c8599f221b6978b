"""Verifiers: is an extracted answer right? One code path for filtering, rewards and evaluation.

A verifier has a name (`VERIFIERS`) and is used through four functions, so that curation, RL
rewards and evaluation read and grade every model's output the same way:
  * `answer_for(text, verifier)`: the answer in a model's output (the program, for code);
  * `is_correct(predicted, reference, verifier, tests)`: grade it;
  * `format_problems_for(text, verifier)`: why the output is not a well-formed trace;
  * `judge(text, reference, verifier, tests)`: all of it, with the reasons for a rejection.
Text verifiers compare with the reference answer: `math` (math-verify: equivalent forms, sets,
intervals), `numeric` (numbers within a tolerance), `exact` and `choice` (a letter A-E). The `code`
verifier ignores the reference and runs the extracted program against the problem's `tests` in
`distill.sandbox`. `reference_parses` lets loaders skip and count references no verifier can read.
"""

from __future__ import annotations

import json
import math
import os
import re
import textwrap
from collections.abc import Sequence
from functools import lru_cache

from math_verify import parse, verify

from distill.answers import extract_answer, format_problems, split_reasoning, think_problems
from distill.records import Problem
from distill.sandbox import run_program
from distill.tasks import verifier_for


def _normalise(text: str) -> str:
    return " ".join(text.strip().strip(".").lower().split())


@lru_cache(maxsize=65536)
def _parsed(text: str):
    # math-verify reads LaTeX best inside math delimiters; a bare "1081" parses either way.
    return parse(f"${text}$")


def check_math(predicted: str, reference: str) -> bool:
    gold = _parsed(reference)
    # math-verify falls back to the raw string when nothing mathematical parses.
    if all(isinstance(g, str) for g in gold):
        raise ValueError(f"reference answer {reference!r} does not parse as mathematics")
    return bool(verify(gold, _parsed(predicted)))


def check_exact(predicted: str, reference: str) -> bool:
    return _normalise(predicted) == _normalise(reference)


# ----------------------------------------------------------------------------- numbers

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}")


def parse_number(text: str) -> list[float] | None:
    """The values a numeric answer may mean, or None. "1,234.5", "3/4", "\\frac{3}{4}", "$5", "x = 2"
    are read; a percentage stands for both readings ("10%" is 10 and 0.1), as datasets write both."""
    s = text.strip().replace("\\!", "").replace("\\,", "").replace("\\$", "").replace("$", "").replace(" ", "")
    s = s.rsplit("=", 1)[-1].rstrip(".")
    percent = s.endswith(("\\%", "%"))
    s = s.removesuffix("%").removesuffix("\\")
    if fraction := _LATEX_FRAC.fullmatch(s):
        s = f"{fraction.group(1)}/{fraction.group(2)}"
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    parts = s.split("/")
    if len(parts) > 2 or not all(_NUMBER.fullmatch(p) for p in parts):
        return None
    numbers = [float(p) for p in parts]
    if len(numbers) == 2 and numbers[1] == 0:
        return None
    value = numbers[0] / numbers[1] if len(numbers) == 2 else numbers[0]
    return [value, value / 100] if percent else [value]


def check_numeric(predicted: str, reference: str, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> bool:
    gold = parse_number(reference)
    if gold is None:
        raise ValueError(f"reference answer {reference!r} is not a number")
    guess = parse_number(predicted) or []
    return any(math.isclose(g, p, rel_tol=rel_tol, abs_tol=abs_tol) for g in gold for p in guess)


# ----------------------------------------------------------------------------- multiple choice

_CHOICE_ALONE = re.compile(r"\(?([A-Ea-e])\)?[.:)]?")
_CHOICE_LEADING = re.compile(r"(?:\(([A-E])\)|([A-E])[.:)])\s.*", re.DOTALL)  # "(B) 42", "B. 42"
# The letter in upper case only: "the answer is a prime" must not read as A.
_CHOICE_PHRASE = re.compile(r"(?i:answer|option|choice)\s*(?i:is|:)?\s*(?i:option\s*)?\(?([A-E])\b")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mathbf|boxed)\{([^{}]*)\}")


def parse_choice(text: str) -> str | None:
    """The letter A-E a multiple-choice answer names: "B", "(B)", "B)", "(B) 42", "The answer is B"."""
    s = _LATEX_TEXT.sub(r"\1", text).replace("*", "").replace("$", "").strip().rstrip(".")
    if alone := _CHOICE_ALONE.fullmatch(s):
        return alone.group(1).upper()
    if leading := _CHOICE_LEADING.fullmatch(s):
        return leading.group(1) or leading.group(2)
    phrases = _CHOICE_PHRASE.findall(s)
    return phrases[-1] if phrases else None


def check_choice(predicted: str, reference: str) -> bool:
    gold = parse_choice(reference)
    if gold is None:
        raise ValueError(f"reference answer {reference!r} is not a choice A-E")
    return parse_choice(predicted) == gold


# ----------------------------------------------------------------------------- code

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*$", re.MULTILINE)
_TRACEBACK_LINE = re.compile(r'File "solution\.py", line (\d+)')


def extract_code(text: str) -> str | None:
    """The last ```python (or ```py, or untagged) fenced block in the final text, after the think block."""
    _, final = split_reasoning(text)
    fences = list(_FENCE.finditer(final))
    # Fences pair up in order: each one opens a block and the next closes it, whatever the language.
    blocks = [
        final[a.end() : b.start()]
        for a, b in zip(fences[::2], fences[1::2], strict=False)  # an unclosed last fence is ignored
        if a.group(1).lower() in ("python", "py", "python3", "")
    ]
    code = textwrap.dedent(blocks[-1]).strip("\n") if blocks else ""
    return code + "\n" if code.strip() else None


def _io_case(test: str) -> dict | None:
    """A stdin/stdout test, or None for a Python test (assert lines run after the program)."""
    if not test.lstrip().startswith("{"):
        return None
    try:
        case = json.loads(test)
    except json.JSONDecodeError:
        return None
    if not (isinstance(case, dict) and isinstance(case.get("stdin"), str) and isinstance(case.get("stdout"), str)):
        raise ValueError(f"test {test[:80]!r} is JSON but not {{'stdin': str, 'stdout': str}}")
    return case


def _same_output(got: str, expected: str) -> bool:
    # Trailing spaces and blank lines are not part of an answer; everything else is.
    return [line.rstrip() for line in got.strip().splitlines()] == [line.rstrip() for line in expected.strip().splitlines()]


def code_failures(program: str, tests: Sequence[str], timeout_s: float = 5.0) -> list[str]:
    """Why `program` fails `tests` (empty when it passes). Python tests run in one process after the
    program; each stdin/stdout pair runs the program afresh; the first failure stops the run."""
    if not tests:
        raise ValueError("a code problem needs tests")
    python = [t for t in tests if _io_case(t) is None]
    if python:
        source = program.rstrip("\n") + "\n\n" + "\n".join(python) + "\n"
        result = run_program(source, timeout_s=timeout_s, cpu_s=math.ceil(timeout_s))
        if not result.ok:
            where = _TRACEBACK_LINE.findall(result.stderr)
            line = source.splitlines()[int(where[-1]) - 1].strip() if where else ""
            error = result.killed_reason or (result.stderr.strip().splitlines() or ["no output"])[-1]
            return [f"failed test: {error}" + (f" at `{line}`" if line else "")]
    for number, case in enumerate(filter(None, map(_io_case, tests)), start=1):
        result = run_program(program, stdin=case["stdin"], timeout_s=timeout_s, cpu_s=math.ceil(timeout_s))
        if not result.ok:
            error = result.killed_reason or (result.stderr.strip().splitlines() or ["no output"])[-1]
            return [f"failed io test {number}: {error}"]
        if not _same_output(result.stdout, case["stdout"]):
            return [f"failed io test {number}: expected {case['stdout'][:80]!r}, got {result.stdout[:80]!r}"]
    return []


def check_code(program: str, tests: Sequence[str]) -> bool:
    return not code_failures(program, tests)


# ----------------------------------------------------------------------------- one code path

VERIFIERS = {"math": check_math, "exact": check_exact, "numeric": check_numeric, "choice": check_choice, "code": check_code}
# These are checked against the problem's tests; the others against its reference answer.
TESTED = {"code"}


def _known(verifier: str) -> None:
    if verifier not in VERIFIERS:
        raise ValueError(f"unknown verifier {verifier!r}; expected one of {sorted(VERIFIERS)}")


def verifier_of(problem: Problem) -> str:
    """The verifier that grades a problem: its own (`meta["verifier"]`, set by `distill.sources`), else its family's."""
    return problem.meta.get("verifier") or verifier_for(problem.family)


def reference_parses(reference: str, verifier: str = "math", tests: Sequence[str] = ()) -> bool:
    """Whether a problem can be graded: loaders skip and count the ones that cannot (open-r1's rule)."""
    _known(verifier)
    if verifier in TESTED:
        return bool(tests)
    if verifier == "math":
        return not all(isinstance(g, str) for g in _parsed(reference))
    if verifier == "numeric":
        return parse_number(reference) is not None
    if verifier == "choice":
        return parse_choice(reference) is not None
    return bool(reference.strip())


def answer_for(text: str, verifier: str) -> str | None:
    """What `is_correct` grades: the program for code; for a choice, the boxed value or else the
    whole final text (base models write "The answer is (B)"); otherwise the extracted answer."""
    _known(verifier)
    if verifier == "code":
        return extract_code(text)
    if verifier == "choice":
        return extract_answer(text) or split_reasoning(text)[1] or None
    return extract_answer(text)


def is_correct(predicted: str | None, reference: str, verifier: str, tests: Sequence[str] = ()) -> bool:
    """Whether an extracted answer matches the reference (or passes the tests); a missing answer is wrong."""
    _known(verifier)
    return predicted is not None and VERIFIERS[verifier](predicted, list(tests) if verifier in TESTED else reference)


def format_problems_for(text: str, verifier: str) -> list[str]:
    """Why `text` is not a well-formed trace for this verifier: code answers with a python block, not a box."""
    if verifier != "code":
        return format_problems(text)
    problems = think_problems(text)
    if extract_code(text) is None:
        problems.append("no python code block")
    return problems


def judge(text: str, reference: str, verifier: str, tests: Sequence[str] = ()) -> tuple[bool, list[str]]:
    """Verdict on a full trace text: right answer *and* well formed; the reasons when it is not."""
    reasons = format_problems_for(text, verifier)
    predicted = answer_for(text, verifier)
    if predicted is None:
        reasons.append("no answer found")
    elif verifier in TESTED:
        reasons += code_failures(predicted, tests)
    elif not is_correct(predicted, reference, verifier):
        reasons.append(f"wrong answer: {predicted!r}, expected {reference!r}")
    return not reasons, reasons


def judge_all(jobs: Sequence[tuple[str, str, str, Sequence[str]]], workers: int | None = None) -> list[tuple[bool, list[str]]]:
    """`judge` over many `(text, reference, verifier, tests)`, in order. Code runs in a thread pool (each
    test is a child process, so threads overlap them); text verifiers stay on this thread, because
    math-verify's timeouts use signal.alarm, which works on the main thread only."""
    from concurrent.futures import ThreadPoolExecutor

    verdicts: list[tuple[bool, list[str]] | None] = [None] * len(jobs)
    coded = [i for i, job in enumerate(jobs) if job[2] in TESTED]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        running = {i: pool.submit(judge, *jobs[i]) for i in coded}
        for i, job in enumerate(jobs):
            if i not in running:
                verdicts[i] = judge(*job)
        for i, future in running.items():
            verdicts[i] = future.result()
    return verdicts
