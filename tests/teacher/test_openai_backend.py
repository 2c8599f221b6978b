"""The openai teacher against real HTTP servers on 127.0.0.1: the project's own student server (a real
tiny model) behind a fault-injecting ASGI wrapper, and a canned server whose answers verify."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from fastapi import FastAPI, Request

from distill.curate import verify_traces
from distill.tasks import make_problems
from pipelines.config import TeacherConfig, load_config
from teacher import procedural
from teacher.backends import make_teacher
from teacher.backends.openai_api import TeacherUnavailable
from teacher.prompts import instruction
from tests.e2e.conftest import distill, start
from tests.e2e.test_resume import kill9, wait_for
from tests.servers import serving as serve_app

KEY = "sk-teacher-test"


@contextmanager
def serving(app):
    """`app` served on 127.0.0.1; yields the OpenAI-style base URL (`…/v1`)."""
    with serve_app(app) as url:
        yield f"{url}/v1"


class Faults:
    """ASGI wrapper: HTTP 500 for the next `fail` chat calls; `slow` calls whose prompt contains `slow_text` sleep first."""

    def __init__(self, app):
        self.app, self.fail, self.slow, self.slow_text, self.slow_s = app, 0, 0, "", 0.0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            return await self.app(scope, receive, send)
        if self.fail > 0:
            self.fail -= 1
            body = json.dumps({"error": {"message": "injected failure", "type": "server_error"}}).encode()
            await send({"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"application/json")]})
            return await send({"type": "http.response.body", "body": body})
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        # The smallest thinking budget the student server has: the tiny model answers in well under a second.
        request = json.loads(b"".join(chunks)) | {"reasoning_effort": "low"}
        body = json.dumps(request).encode()
        if self.slow > 0 and self.slow_text and self.slow_text in request["messages"][-1]["content"]:
            self.slow -= 1
            await asyncio.sleep(self.slow_s)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


@pytest.fixture(scope="module")
def student_server(tiny_student):
    from student.serve import create_app

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model decodes faster on one thread of two shared cores
    faults = Faults(create_app(tiny_student["dir"], api_key=KEY, max_tokens_limit=16))
    with serving(faults) as url:
        yield {"url": url, "faults": faults, "model": Path(tiny_student["dir"]).name}
    torch.set_num_threads(threads)


def config(url: str, model: str, **changes) -> TeacherConfig:
    settings = {"backend": "openai", "base_url": url, "model": model, "api_key_env": "TEACHER_TEST_KEY", "max_tokens": 4}
    return TeacherConfig(**(settings | {"concurrency": 4, "timeout_s": 30.0, "max_retries": 3, "backoff_s": 0.05} | changes))


def test_500s_are_retried_and_a_slow_request_times_out_retries_and_blocks_nobody(student_server, tiny_student, monkeypatch):
    monkeypatch.setenv("TEACHER_TEST_KEY", KEY)
    problems, faults = tiny_student["problems"][:4], student_server["faults"]
    slow = problems[0]
    faults.fail, faults.slow, faults.slow_text, faults.slow_s = 3, 1, slow.question, 8.0
    teacher = make_teacher(config(student_server["url"], student_server["model"], timeout_s=4.0), seed=0)
    began, arrived = time.monotonic(), []
    for trace in teacher.traces(problems, samples=1):
        arrived.append((trace, time.monotonic() - began))
    assert faults.fail == 0 and faults.slow == 0 and teacher.retries >= 4  # three 500s and one timeout, all retried
    assert sorted(t.problem_id for t, _ in arrived) == sorted(p.id for p in problems)
    assert all(not t.reasons and t.model == student_server["model"] and t.answer_tokens > 0 for t, _ in arrived)
    # The slow request timed out after 4 s and was retried; the others were not held up behind it.
    assert arrived[-1][0].problem_id == slow.id
    assert arrived[-1][0].seconds >= 4.0
    assert max(at for _, at in arrived[:-1]) < 4.0
    assert arrived[-1][1] < 8.0  # a retry, not a wait for the 8 s response


def test_a_request_slower_than_every_attempt_becomes_a_failed_trace(student_server, tiny_student, monkeypatch):
    monkeypatch.setenv("TEACHER_TEST_KEY", KEY)
    faults, problem = student_server["faults"], tiny_student["problems"][5]
    faults.slow, faults.slow_text, faults.slow_s = 2, problem.question, 3.0
    teacher = make_teacher(config(student_server["url"], student_server["model"], timeout_s=0.5, max_retries=1), seed=0)
    (trace,) = teacher.traces([problem], samples=1)
    assert trace.reasons == ["request failed after 2 attempts: timed out"] and not trace.verified
    faults.slow = 0


def test_a_wrong_key_a_wrong_model_and_a_dead_port_stop_before_the_batch(student_server, tiny_student, monkeypatch):
    problems = tiny_student["problems"][:2]
    monkeypatch.setenv("TEACHER_TEST_KEY", "sk-wrong")
    with pytest.raises(TeacherUnavailable, match="refused the API key \\(401\\); put a valid key in .*TEACHER_TEST_KEY"):
        list(make_teacher(config(student_server["url"], student_server["model"]), seed=0).traces(problems, 1))
    monkeypatch.setenv("TEACHER_TEST_KEY", KEY)
    with pytest.raises(TeacherUnavailable, match="teacher.model 'gpt-9' is not served at .*; it serves: "):
        list(make_teacher(config(student_server["url"], "gpt-9"), seed=0).traces(problems, 1))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    sock.close()  # nothing listens there now
    began = time.monotonic()
    with pytest.raises(TeacherUnavailable, match="cannot reach the teacher endpoint .*is the server running"):
        list(make_teacher(config(dead, "m"), seed=0).traces(problems, 1))
    assert time.monotonic() - began < 5


def canned_app(problems, style: str, delay: float = 0.0) -> FastAPI:
    """Answers like a reasoning server, solving each problem with the procedural teacher so answers verify.

    `style`: "reasoning_content" or "reasoning" (a separate field), or "inline" (`<think>` in content)."""
    by_question = {f"{p.question}\n\n{instruction(p)}": p for p in problems}
    app = FastAPI()

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": "canned", "object": "model", "created": 0, "owned_by": "test"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        await asyncio.sleep(delay)
        problem = by_question[body["messages"][-1]["content"]]
        reasoning, answer = procedural.solve(problem, random.Random(body["seed"]), slip_rate=0.0)
        message = {"role": "assistant", "content": answer, style: reasoning}
        if style == "inline":
            message = {"role": "assistant", "content": f"<think>\n{reasoning}\n</think>\n\n{answer}"}
        usage = {"prompt_tokens": 10, "completion_tokens": 30, "total_tokens": 40}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": "canned", "choices": [choice], "usage": usage}

    return app


@pytest.mark.parametrize("style", ["reasoning_content", "reasoning", "inline"])
def test_reasoning_is_read_from_a_separate_field_or_an_inline_think_block(style):
    problems = make_problems(["letters", "arithmetic"], 3, "train", seed=0)
    with serving(canned_app(problems, style)) as url:
        traces = list(make_teacher(config(url, "canned", max_tokens=512), seed=0).traces(problems, samples=2))
    assert len(traces) == 12 and all(t.reasoning and "<think>" not in t.reasoning + t.answer_text for t in traces)
    assert all(0 < t.reasoning_tokens < 30 and t.reasoning_tokens + t.answer_tokens == 30 for t in traces)
    kept, _ = verify_traces(traces, {p.id: p for p in problems})
    assert len(kept) == 12


def test_generation_through_the_cli_survives_kill_9(tmp_path):
    settings = ["tasks.train_per_family=8", "teacher.shard_size=2", "teacher.concurrency=1", "teacher.backend=openai"]
    cfg = load_config("tiny", settings)
    problems = make_problems(cfg.tasks.families, cfg.tasks.train_per_family, "train", cfg.seed, cfg.tasks.eval_share)
    workdir = tmp_path / "w"
    shards = workdir / "partial" / "generate" / "shards"
    with serving(canned_app(problems, "reasoning_content", delay=0.25)) as url:
        args = ["generate", "--preset", "tiny", "--workdir", str(workdir)]
        args += [a for s in [*settings, f"teacher.base_url={url}", "teacher.model=canned"] for a in ("--set", s)]
        with open(tmp_path / "first.log", "w") as log:
            first = start(*args, log=log)
            wait_for(lambda: len(list(shards.glob("shard-*.jsonl"))) >= 2, 120, first)
            kill9(first)
        on_disk = sum(len(p.read_text().splitlines()) for p in shards.glob("shard-*.jsonl"))
        assert 0 < on_disk < 16
        again = distill(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming generation: {on_disk} traces already on disk" in again.stdout
    traces = [json.loads(line) for line in (workdir / "traces" / "all.jsonl").read_text().splitlines()]
    assert len(traces) == 16 and len({(t["problem_id"], t["sample"]) for t in traces}) == 16
    assert all(t["verified"] and t["backend"] == "openai" for t in traces)
    rates = json.loads((workdir / "data" / "pass_rates.json").read_text())
    assert rates == {p.id: 1.0 for p in problems}
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["metrics"]["generate"]["mean_pass_rate"] == 1.0
