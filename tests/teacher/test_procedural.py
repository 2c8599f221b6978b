import random

import pytest

from distill.curate import verify_traces
from distill.records import Problem
from distill.tasks import make_problems
from teacher import procedural
from teacher.backends import ProceduralTeacher

PROBLEMS = make_problems(["letters", "arithmetic"], 150, "train", seed=11)


@pytest.mark.parametrize("slip_rate", [0.0, 0.5, 1.0])
def test_every_trace_verifies(slip_rate):
    traces = list(ProceduralTeacher(seed=0, slip_rate=slip_rate).traces(PROBLEMS, samples=2))
    kept, rejected = verify_traces(traces, {p.id: p for p in PROBLEMS})
    assert not rejected, rejected[0].reasons
    assert len(kept) == 2 * len(PROBLEMS)


def test_slipped_traces_notice_and_still_end_right():
    traces = list(ProceduralTeacher(seed=0, slip_rate=1.0).traces(PROBLEMS, samples=1))
    # A letter with no occurrence cannot be miscounted, nor a sum without carries lose one; the rest slip and correct.
    counted = [t for t in traces if t.family == "letters" and "\\boxed{0}" not in t.answer_text]
    assert counted and all("wait, that is wrong" in t.reasoning.lower() for t in counted)
    arithmetic = [t for t in traces if t.family == "arithmetic"]
    assert sum("wait" in t.reasoning.lower() for t in arithmetic) > 0.6 * len(arithmetic)
    kept, _ = verify_traces(traces, {p.id: p for p in PROBLEMS})
    assert len(kept) == len(traces)


def test_traces_work_one_small_step_a_line():
    by_kind = {}
    for problem in PROBLEMS:
        by_kind.setdefault(problem.meta.get("kind", "letters"), problem)
    rng = random.Random(0)
    reasoning = {kind: procedural.solve(p, rng, slip_rate=0.0)[0] for kind, p in by_kind.items()}
    letters = by_kind["letters"]
    assert " ".join(letters.meta["word"]) in reasoning["letters"]
    assert f"Total: {letters.answer}." in reasoning["letters"]
    assert "write" in reasoning["add"] and "write" not in reasoning["sub"]
    a, b = by_kind["mul"].meta["a"], by_kind["mul"].meta["b"]
    assert f"{a} × {b} = {a} × {b // 10 * 10} + {a} × {b % 10}." in reasoning["mul"]
    assert "Step 1." in reasoning["word"] and "Step 2." in reasoning["word"]
    for kind, text in reasoning.items():
        if kind != "letters":
            meta = by_kind[kind].meta
            assert text.endswith(f"= {by_kind[kind].answer}."), (kind, meta, text)


def test_letter_walk_numbers_each_occurrence():
    from teacher.procedural.letters import walk

    assert walk("strawberry", "r") == ("s t r(1) a w b e r(2) r(3) y", 3)
    assert walk("strawberry", "r", skipped=7) == ("s t r(1) a w b e r r(2) y", 2)
    assert walk("apple", "z") == ("a p p l e", 0)


def test_phrasing_varies_across_samples():
    problem = PROBLEMS[0]
    texts = {t.text for t in ProceduralTeacher(seed=0, slip_rate=0.0).traces([problem], samples=12)}
    assert len(texts) >= 3


def test_unknown_family_is_a_clear_error():
    stranger = Problem(id="x1", family="geometry", question="?", answer="1")
    with pytest.raises(ValueError, match="only solves the built-in families"):
        procedural.solve(stranger, random.Random(0), 0.0)
