import random
import re

import pytest

from distill.curate import verify_traces
from distill.records import Problem
from distill.tasks import make_problems
from distill.tools import run_python
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
    # A letter that does not occur cannot be missed; every other trace slips, notices and redoes the step.
    counted = [t for t in traces if t.family == "letters" and "\\boxed{0}" not in t.answer_text]
    assert counted and all("I missed one" in t.reasoning for t in counted)
    arithmetic = [t for t in traces if t.family == "arithmetic"]
    assert arithmetic and all("Wait, " in t.reasoning for t in arithmetic)
    kept, _ = verify_traces(traces, {p.id: p for p in PROBLEMS})
    assert len(kept) == len(traces)


def test_every_tool_call_in_a_trace_gives_what_the_sandbox_gives():
    """The outputs a trace shows are the ones the student will read at inference, where the sandbox runs the call."""
    rng = random.Random(0)
    by_kind = {}
    for problem in PROBLEMS:
        by_kind.setdefault(problem.meta.get("kind", "letters"), problem)
    for slip in (False, True):
        for kind, problem in by_kind.items():
            reasoning = procedural.solve(problem, rng, slip_rate=float(slip))[0]
            calls = re.findall(r"<python>(.*?)</python>\n<output>(.*?)</output>", reasoning)
            assert calls, (kind, reasoning)
            assert all(run_python(code) == shown for code, shown in calls), (kind, reasoning)
            assert calls[-1][1] == problem.answer  # the last call computes the answer


def test_story_steps_name_the_operation_they_take():
    rng = random.Random(0)
    story = next(p for p in PROBLEMS if p.meta.get("kind") == "word")
    reasoning = procedural.solve(story, rng, slip_rate=0.0)[0]
    ops = {"+": "add", "-": "subtract", "*": "multiply"}
    assert "Step 1: " in reasoning and f"so I {ops[story.meta['op1']]}." in reasoning
    assert "Step 2: " in reasoning and f"so I {ops[story.meta['op2']]}." in reasoning


def test_phrasing_varies_across_samples():
    problem = PROBLEMS[0]
    texts = {t.text for t in ProceduralTeacher(seed=0, slip_rate=0.0).traces([problem], samples=12)}
    assert len(texts) >= 3


def test_unknown_family_is_a_clear_error():
    stranger = Problem(id="x1", family="geometry", question="?", answer="1")
    with pytest.raises(ValueError, match="only solves the built-in families"):
        procedural.solve(stranger, random.Random(0), 0.0)
