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
    # A letter with no occurrence cannot be miscounted; every other trace slips and corrects itself.
    slipping = [t for t in traces if t.family == "arithmetic" or not t.answer_text.count("\\boxed{0}")]
    assert all("wait, that is wrong" in t.reasoning.lower() for t in slipping)
    kept, _ = verify_traces(traces, {p.id: p for p in PROBLEMS})
    assert len(kept) == len(traces)


def test_traces_work_step_by_step_and_check_by_another_route():
    by_kind = {}
    for problem in PROBLEMS:
        by_kind.setdefault(problem.meta.get("kind", "letters"), problem)
    rng = random.Random(0)
    reasoning = {kind: procedural.solve(p, rng, slip_rate=0.0)[0] for kind, p in by_kind.items()}
    word = by_kind["letters"].meta["word"]
    assert ", ".join(word) in reasoning["letters"] and "position" in reasoning["letters"]
    assert "carry" in reasoning["add"] or "write" in reasoning["add"]
    assert "Split" in reasoning["mul"] and "partial products" in reasoning["mul"]
    assert "Step 1" in reasoning["word"] and "Step 2" in reasoning["word"]
    assert all(("Correct." in r or "Both ways" in r) for r in reasoning.values())


def test_phrasing_varies_across_samples():
    problem = PROBLEMS[0]
    texts = {t.text for t in ProceduralTeacher(seed=0, slip_rate=0.0).traces([problem], samples=12)}
    assert len(texts) >= 3


def test_unknown_family_is_a_clear_error():
    stranger = Problem(id="x1", family="geometry", question="?", answer="1")
    with pytest.raises(ValueError, match="only solves the built-in families"):
        procedural.solve(stranger, random.Random(0), 0.0)
