"""An OpenAI-compatible chat server for the student, with the thinking budget as `reasoning_effort`.

`POST /v1/chat/completions` answers like OpenAI's API, with the thinking split out the way DeepSeek and
vLLM do it: `message.reasoning_content` (stream: `delta.reasoning_content`) and the answer in `content`.
`reasoning_effort` ("low" | "medium" (default) | "high") picks the thinking budget from `EFFORT_BUDGETS`;
`max_tokens` / `max_completion_tokens` (default 512) caps the answer after `</think>`, so a completion can hold up
to budget + max_tokens tokens; `usage.completion_tokens_details.reasoning_tokens` says how many were thinking.
Sampling is greedy unless `temperature` > 0 (default 0, as the pipeline evaluates).

One model, one generation at a time: a single worker thread takes requests in arrival order. A client that
goes away (checked every 0.1 s) cancels its generation, running or still queued.

    python -m student.serve runs/demo/models/rl --port 8000 [--api-key KEY]
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from student.load import load_model, load_tokenizer
from student.thinking import EFFORT_BUDGETS, GenerationCancelled, ThoughtResult, generate_with_budget

log = logging.getLogger(__name__)
ROLES = {"system", "developer", "user", "assistant"}
MAX_N = 8


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    kind = {401: "authentication_error", 404: "not_found_error"}.get(
        status, "invalid_request_error" if status < 500 else "server_error"
    )
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status_code=status)


@dataclass
class Params:
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    top_p: float
    n: int
    stream: bool
    seed: int | None
    effort: str
    include_usage: bool


def _number(body: dict, key: str, default, low: float, high: float, integer: bool = False, low_open: bool = False):
    value = body.get(key)
    if value is None:
        return default
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < low or value > high or (low_open and value == low):
        what = "an integer" if integer else "a number"
        raise ApiError(400, f"{key} must be {what} in {'(' if low_open else '['}{low}, {high}]; got {value!r}", key)
    return value


def _content(message, i: int) -> dict[str, str]:
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise ApiError(400, f"messages[{i}] must be an object with a role in {sorted(ROLES)}", "messages")
    content = message.get("content")
    if isinstance(content, list):  # content parts: only text is understood here
        if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
            raise ApiError(400, f"messages[{i}].content: only text parts are supported", "messages")
        content = "".join(p["text"] for p in content)
    if content is None and message["role"] == "assistant":
        content = ""
    if not isinstance(content, str):
        raise ApiError(400, f"messages[{i}].content must be a string or a list of text parts", "messages")
    # Chat templates rarely know OpenAI's "developer" role; it means what "system" means.
    return {"role": "system" if message["role"] == "developer" else message["role"], "content": content}


def parse(body, model_name: str, max_tokens_limit: int) -> Params:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    if body.get("model") not in (None, model_name):
        raise ApiError(
            404, f"The model {body['model']!r} does not exist; this server serves {model_name!r}", "model", "model_not_found"
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty list", "messages")
    for key in ("tools", "functions", "stop", "logprobs"):
        if body.get(key) not in (None, False, []):
            raise ApiError(400, f"{key} is not supported by this server", key)
    cap = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    effort = body.get("reasoning_effort") or "medium"
    if effort not in EFFORT_BUDGETS:
        raise ApiError(400, f"reasoning_effort must be one of {list(EFFORT_BUDGETS)}; got {effort!r}", "reasoning_effort")
    if not isinstance(body.get("stream", False), bool):
        raise ApiError(400, "stream must be a boolean", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "stream_options must be an object", "stream_options")
    return Params(
        messages=[_content(m, i) for i, m in enumerate(messages)],
        max_tokens=_number(body, cap, min(512, max_tokens_limit), 1, max_tokens_limit, integer=True),
        temperature=float(_number(body, "temperature", 0.0, 0, 2)),
        top_p=float(_number(body, "top_p", 1.0, 0, 1, low_open=True)),
        n=_number(body, "n", 1, 1, MAX_N, integer=True),
        stream=body.get("stream", False),
        seed=_number(body, "seed", None, -(2**63), 2**63 - 1, integer=True),
        effort=effort,
        include_usage=bool(options.get("include_usage")),
    )


def create_app(
    model_ref: str,
    model_name: str | None = None,
    api_key: str | None = None,
    max_prompt_tokens: int = 2048,
    max_tokens_limit: int = 4096,
) -> FastAPI:
    model, tokenizer = load_model(model_ref), load_tokenizer(model_ref)
    ref = Path(model_ref.rstrip("/"))
    name = model_name or (ref.stem if ref.suffix == ".gguf" else ref.name)
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")  # the queue: one generation at a time

    @asynccontextmanager
    async def lifespan(app):
        yield
        worker.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title=f"distill student: {name}", lifespan=lifespan)
    # How generations ended; cancelled ones are those whose client went away (operators and tests read this).
    app.state.generations = {"completed": 0, "cancelled": 0, "failed": 0}

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return _error(exc.status, exc.message, exc.param, exc.code)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def server_error(request, exc: Exception):
        log.exception("unhandled error")
        return _error(500, f"internal error: {type(exc).__name__}")

    def check_key(request: Request) -> None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if api_key and not hmac.compare_digest(given.encode(), api_key.encode()):
            raise ApiError(401, "Incorrect API key provided", code="invalid_api_key")

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models(request: Request):
        check_key(request)
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "distill"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        check_key(request)
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
        p = parse(body, name, max_tokens_limit)
        try:
            prompt = tokenizer.apply_chat_template(p.messages, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # a template that refuses these messages (roles, order) is the request's fault
            raise ApiError(400, f"the chat template rejected these messages: {exc}", "messages") from None
        n_prompt = len(tokenizer.encode(prompt, add_special_tokens=False))
        if n_prompt > max_prompt_tokens:
            raise ApiError(
                400, f"the prompt is {n_prompt} tokens; the limit is {max_prompt_tokens}", "messages", "context_length_exceeded"
            )

        cancel, loop = threading.Event(), asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        on_delta = (lambda *event: loop.call_soon_threadsafe(queue.put_nowait, event)) if p.stream else None
        job = loop.run_in_executor(worker, _generate, model, tokenizer, prompt, p, cancel, on_delta, app.state.generations)
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": name}
        watcher = asyncio.create_task(_watch(request, cancel))
        if not p.stream:
            try:
                results = await job
            except GenerationCancelled:
                return Response(status_code=499)  # nobody is listening any more
            except Exception as exc:
                log.exception("generation failed")
                return _error(500, f"generation failed: {type(exc).__name__}: {exc}", code="model_error")
            finally:
                cancel.set()
                watcher.cancel()
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": r.answer, "reasoning_content": r.reasoning},
                    "finish_reason": r.finish_reason,
                    "logprobs": None,
                }
                for i, r in enumerate(results)
            ]
            return {**head, "object": "chat.completion", "choices": choices, "usage": _usage(n_prompt, results)}

        job.add_done_callback(lambda _: queue.put_nowait(None))  # runs on the loop after every queued delta

        def chunk(choices, **extra) -> str:
            return f"data: {json.dumps({**head, 'object': 'chat.completion.chunk', 'choices': choices, **extra})}\n\n"

        async def events():
            try:
                yield chunk(
                    [{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None} for i in range(p.n)]
                )
                while (event := await queue.get()) is not None:
                    i, kind, text = event
                    key = "reasoning_content" if kind == "reasoning" else "content"
                    yield chunk([{"index": i, "delta": {key: text}, "finish_reason": None}])
                try:
                    results = job.result()
                except GenerationCancelled:
                    return
                except Exception as exc:
                    log.exception("generation failed")
                    error = {"message": f"generation failed: {type(exc).__name__}: {exc}", "type": "server_error", "param": None}
                    yield f"data: {json.dumps({'error': {**error, 'code': 'model_error'}})}\n\n"
                    return
                yield chunk([{"index": i, "delta": {}, "finish_reason": r.finish_reason} for i, r in enumerate(results)])
                if p.include_usage:
                    yield chunk([], usage=_usage(n_prompt, results))
                yield "data: [DONE]\n\n"
            finally:  # also reached when the client goes away and the response task is cancelled
                cancel.set()
                watcher.cancel()

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app


def _generate(model, tokenizer, prompt: str, p: Params, cancel: threading.Event, on_delta, stats: dict) -> list[ThoughtResult]:
    """Runs on the single worker thread; a request whose client left while it was queued is skipped."""
    try:
        if cancel.is_set():
            raise GenerationCancelled
        results = generate_with_budget(
            model,
            tokenizer,
            [prompt],
            EFFORT_BUDGETS[p.effort],
            p.max_tokens,
            temperature=p.temperature,
            num_samples=p.n,
            seed=p.seed,
            top_p=p.top_p,
            cancel=cancel,
            on_delta=on_delta,
        )
    except GenerationCancelled:
        stats["cancelled"] += 1
        raise
    except Exception:
        stats["failed"] += 1
        raise
    stats["completed"] += 1
    return results


async def _watch(request: Request, cancel: threading.Event) -> None:
    """Set `cancel` when the client disconnects, so the worker stops generating for nobody."""
    while not cancel.is_set():
        if await request.is_disconnected():
            cancel.set()
            return
        await asyncio.sleep(0.1)


def _usage(n_prompt: int, results: list[ThoughtResult]) -> dict:
    reasoning = sum(r.thinking_tokens for r in results)
    completion = reasoning + sum(r.answer_tokens for r in results)
    return {
        "prompt_tokens": n_prompt,
        "completion_tokens": completion,
        "total_tokens": n_prompt + completion,
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def serve(model_ref: str, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None, **options) -> None:
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        log.warning("serving on %s without an API key: anyone who can reach it can use it", host)
    uvicorn.run(create_app(model_ref, api_key=api_key, **options), host=host, port=port)
