"""The OpenAI-compatible server, run for real (uvicorn on 127.0.0.1) and called with the official `openai` client."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import torch
from openai import OpenAI

from tests.servers import serving

try:
    import httpx
except ImportError:  # openai 3.x is built on httpx2: the same API under a new name
    import httpx2 as httpx

KEY = "sk-test-key"
LIMIT = 64
QUESTION = [{"role": "user", "content": "What is 12 + 30?"}]


@pytest.fixture(scope="module")
def server(tiny_student):
    from student.serve import create_app

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on two shared cores decodes several times faster on one thread
    app = create_app(tiny_student["dir"], api_key=KEY, max_prompt_tokens=128, max_tokens_limit=LIMIT)
    with serving(app) as url:
        yield {"url": url, "name": Path(tiny_student["dir"]).name, "app": app}
    torch.set_num_threads(threads)


@pytest.fixture
def client(server):
    return OpenAI(base_url=server["url"] + "/v1", api_key=KEY, max_retries=0, timeout=60)


def test_models_and_health(server, client):
    assert [m.id for m in client.models.list()] == [server["name"]]
    assert httpx.get(server["url"] + "/health").json() == {"status": "ok"}


def test_completion_splits_reasoning_and_counts_tokens(server, client):
    out = client.chat.completions.create(model=server["name"], messages=QUESTION, max_tokens=8, reasoning_effort="low")
    message, usage = out.choices[0].message, out.usage
    assert isinstance(message.content, str) and isinstance(message.reasoning_content, str)
    assert out.choices[0].finish_reason in ("stop", "length")
    reasoning = usage.completion_tokens_details.reasoning_tokens
    assert 0 <= reasoning <= 64  # the "low" budget
    assert 1 <= usage.completion_tokens - reasoning <= 8  # the answer, EOS included, within max_tokens
    assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # n samples, each with its own reasoning
    many = client.chat.completions.create(
        model=server["name"], messages=QUESTION, max_tokens=4, n=3, temperature=1.0, seed=1, reasoning_effort="low"
    )
    assert [c.index for c in many.choices] == [0, 1, 2]


def test_stream_assembles_to_the_same_completion(server, client):
    ask = {"model": server["name"], "messages": QUESTION, "max_completion_tokens": 8, "reasoning_effort": "low"}
    whole = client.chat.completions.create(**ask)
    reasoning, content, finish, usage = "", "", None, None
    for chunk in client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True}):
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            reasoning += getattr(choice.delta, "reasoning_content", None) or ""
            content += choice.delta.content or ""
            finish = choice.finish_reason or finish
    # Greedy decoding: token-by-token deltas concatenate to exactly the non-streamed message.
    assert (reasoning, content) == (whole.choices[0].message.reasoning_content, whole.choices[0].message.content)
    assert finish == whole.choices[0].finish_reason and usage.model_dump() == whole.usage.model_dump()


def test_errors_are_openai_style(server, client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-nonexistent", messages=QUESTION)
    bad = {"temperature": 3, "n": 9, "max_tokens": LIMIT + 1, "top_p": 0, "reasoning_effort": "extreme"}
    for param, value in bad.items():
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model=server["name"], messages=QUESTION, **{param: value})
        assert err.value.param == param
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=server["name"], messages=[])
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=server["name"], messages=[{"role": "user", "content": "seven " * 200}])
    assert "limit is 128" in err.value.message and err.value.code == "context_length_exceeded"
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=server["url"] + "/v1", api_key="wrong", max_retries=0).models.list()
    raw = httpx.post(server["url"] + "/v1/chat/completions", content=b"{not json", headers={"Authorization": f"Bearer {KEY}"})
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(server["url"] + "/nowhere").json()["error"]["message"]
    assert httpx.post(server["url"] + "/v1/chat/completions", json={"messages": QUESTION}).status_code == 401


def test_model_error_is_500_and_server_keeps_serving(server, client, monkeypatch):
    import student.serve

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA fell over")

    monkeypatch.setattr(student.serve, "generate_with_budget", broken)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=server["name"], messages=QUESTION, max_tokens=2)
    monkeypatch.undo()
    assert client.chat.completions.create(model=server["name"], messages=QUESTION, max_tokens=2, reasoning_effort="low").choices


def test_concurrent_requests_take_turns(server, client):
    ask = {"model": server["name"], "messages": QUESTION, "max_tokens": 4, "reasoning_effort": "low"}
    with ThreadPoolExecutor(3) as pool:
        outs = list(pool.map(lambda _: client.chat.completions.create(**ask), range(3)))
    assert len({(o.choices[0].message.reasoning_content, o.choices[0].message.content) for o in outs}) == 1


def test_client_disconnect_stops_generation(server, client):
    """Cancelling is observed through the server's own count, not timing: without it this waits out its deadline."""
    stats = server["app"].state.generations
    cancelled = stats["cancelled"]
    ask = {"messages": QUESTION, "max_tokens": LIMIT, "reasoning_effort": "high", "stream": True}
    url, auth = server["url"] + "/v1/chat/completions", {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(timeout=30) as http, http.stream("POST", url, json=ask, headers=auth) as r:
        assert r.status_code == 200
        first = next(line for line in r.iter_lines() if line.startswith("data: "))
        assert json.loads(first[6:])["object"] == "chat.completion.chunk"
    # The worker stops within a few decoding steps of the disconnect instead of writing 1024 + 64 tokens for nobody.
    deadline = time.monotonic() + 20
    while stats["cancelled"] == cancelled:
        assert time.monotonic() < deadline, "generation went on after the client left"
        time.sleep(0.05)
    # The same for a plain request whose client gives up waiting.
    with pytest.raises(httpx.TimeoutException):
        httpx.post(url, json={**ask, "stream": False}, headers=auth, timeout=0.5)
    deadline = time.monotonic() + 20
    while stats["cancelled"] == cancelled + 1:
        assert time.monotonic() < deadline, "generation went on after the client left"
        time.sleep(0.05)
    start = time.monotonic()
    assert client.chat.completions.create(model=server["name"], messages=QUESTION, max_tokens=2, reasoning_effort="low").choices
    assert time.monotonic() - start < 10
