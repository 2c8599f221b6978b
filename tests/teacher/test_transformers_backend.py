"""The transformers teacher on the tiny preset's (random) model: real generations, real verification."""

from __future__ import annotations

import pytest

from distill.curate import verify_traces
from pipelines.config import TeacherConfig
from teacher.backends import make_teacher


@pytest.mark.parametrize("budget", [0, 6])
def test_real_generations_become_traces_that_verification_rejects_with_reasons(tiny_student, budget):
    problems = tiny_student["problems"][:3]
    cfg = TeacherConfig(backend="transformers", model=tiny_student["dir"], max_tokens=12, thinking_budget=budget, batch_size=2)
    teacher = make_teacher(cfg, seed=0)
    traces = list(teacher.traces(problems, samples=2))

    assert sorted((t.problem_id, t.sample) for t in traces) == sorted((p.id, s) for p in problems for s in range(2))
    for trace in traces:
        assert trace.backend == "transformers" and trace.model == tiny_student["dir"]
        assert trace.seconds > 0 and trace.reasoning_tokens + trace.answer_tokens > 0
        if budget:  # the budget closes the think block, so the random model always gets to answer
            assert 0 < trace.reasoning_tokens <= budget and 0 < trace.answer_tokens <= 12
    kept, rejected = verify_traces(traces, {p.id: p for p in problems})
    assert not kept and len(rejected) == 6  # a random model does not solve anything
    assert all(t.reasons and not t.verified for t in rejected)
    if not budget:  # twelve random tokens never close the think block: the reason says so, first
        assert all(t.reasons[0].startswith("no final answer") for t in rejected)


def test_sampling_is_reproducible_and_samples_differ(tiny_student):
    problems = tiny_student["problems"][:1]
    cfg = TeacherConfig(backend="transformers", model=tiny_student["dir"], max_tokens=10, temperature=1.0)
    first = [t.reasoning for t in make_teacher(cfg, seed=3).traces(problems, 2)]
    again = [t.reasoning for t in make_teacher(cfg, seed=3).traces(problems, 2)]
    assert first == again and first[0] != first[1]


def test_a_model_teacher_needs_a_model_and_a_known_backend():
    with pytest.raises(ValueError, match="teacher.model: the transformers backend needs a model"):
        make_teacher(TeacherConfig(backend="transformers"), seed=0)
    with pytest.raises(ValueError, match="unknown backend 'gpt'; available: procedural, transformers, vllm, openai"):
        make_teacher(TeacherConfig(backend="gpt"), seed=0)


@pytest.mark.slow
def test_smollm2_teacher_writes_traces_that_go_through_verification():
    from distill.tasks import make_problems
    from student.sources import resolve

    problems = make_problems(["letters", "arithmetic"], 2, "eval", seed=0)
    cfg = TeacherConfig(backend="transformers", model=resolve("smollm2-135m-instruct"), max_tokens=48, thinking_budget=96)
    traces = list(make_teacher(cfg, seed=0).traces(problems, samples=1))
    assert len(traces) == 4 and all(t.reasoning and 0 < t.reasoning_tokens <= 96 for t in traces)
    kept, rejected = verify_traces(traces, {p.id: p for p in problems})
    assert len(kept) + len(rejected) == 4 and all(t.reasons for t in rejected)


def test_vllm_teacher_where_vllm_is_installed(tiny_student):
    pytest.importorskip("vllm", reason="vLLM is the GPU extra [vllm]; this test runs on a GPU machine")
    problems = tiny_student["problems"][:2]
    cfg = TeacherConfig(backend="vllm", model=tiny_student["dir"], max_tokens=16, dtype="float32")
    traces = list(make_teacher(cfg, seed=0).traces(problems, samples=2))
    assert sorted((t.problem_id, t.sample) for t in traces) == sorted((p.id, s) for p in problems for s in range(2))
    assert all(t.backend == "vllm" and t.reasoning_tokens + t.answer_tokens > 0 for t in traces)
