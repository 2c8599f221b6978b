"""The `openai` teacher: any OpenAI-compatible chat-completions server (vLLM, SGLang, TGI, llama.cpp,
Ollama, hosted APIs) through the official `openai` client.

- One request per (problem, sample), at most `concurrency` in flight; traces are yielded as each
  finishes (not in order), so a slow request never holds back the others or the store's shards.
- The client's own retries are off (`max_retries=0`): we retry 429s, 5xx, timeouts and connection
  errors ourselves with exponential backoff and jitter, so each retry is logged and counted
  (`self.retries`). A request that still fails becomes a failed trace with the reason.
- Before the batch, one `/v1/models` call (or a 1-token chat call where a server lacks that route)
  stops the run early with a clear message on an unreachable endpoint, a refused key or an unknown
  model. A 401/403/404 mid-run stops it too: every other request would fail the same way.
- Reasoning is read from `message.reasoning_content` (DeepSeek, vLLM, this project's server) or
  `message.reasoning` (newer vLLM, OpenRouter), else from an inline `<think>…</think>` in `content`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import time
from collections.abc import Iterator

import openai
from openai import AsyncOpenAI

from distill.records import Problem, Trace
from teacher.prompts import messages
from teacher.traces import failed, from_completion

log = logging.getLogger(__name__)
# APITimeoutError is an APIConnectionError, so a request slower than `timeout_s` is retried too.
RETRYABLE = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)
FATAL = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)


class TeacherUnavailable(RuntimeError):
    """The endpoint cannot serve this run at all: unreachable, wrong key or unknown model."""


class OpenAITeacher:
    name = "openai"

    def __init__(self, cfg, seed: int):
        if not cfg.base_url:
            raise ValueError("teacher.base_url: the openai backend needs the server's URL, e.g. http://127.0.0.1:8000/v1")
        self.cfg, self.seed = cfg, seed
        # Local servers (vLLM, llama.cpp) accept any key, but the client insists on a string.
        self.api_key = os.environ.get(cfg.api_key_env) or "EMPTY"
        self.retries = 0

    def traces(self, problems: list[Problem], samples: int) -> Iterator[Trace]:
        loop = asyncio.new_event_loop()
        client = AsyncOpenAI(base_url=self.cfg.base_url, api_key=self.api_key, max_retries=0, timeout=self.cfg.timeout_s)
        pending: set[asyncio.Task] = set()
        try:
            if problems:
                loop.run_until_complete(self._check(client))
            gate = asyncio.Semaphore(max(1, self.cfg.concurrency))
            pending = {loop.create_task(self._one(client, gate, p, s)) for p in problems for s in range(samples)}
            while pending:
                done, pending = loop.run_until_complete(asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED))
                for task in done:
                    yield task.result()
        finally:  # also when the consumer stops early or a fatal error ends the run
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(_drain(pending))
            loop.run_until_complete(client.close())
            loop.close()

    async def _check(self, client: AsyncOpenAI) -> None:
        where, model = self.cfg.base_url, self.cfg.model
        try:
            try:
                page = await self._with_retries(client.models.list)
            except openai.NotFoundError:  # some servers have no /models route: ask for one token instead
                await self._with_retries(lambda: client.chat.completions.create(**self._request(None, 0), max_tokens=1))
                return
            served = [m.id for m in page.data]
            if model not in served:
                raise TeacherUnavailable(f"teacher.model {model!r} is not served at {where}; it serves: {', '.join(served)}")
        except openai.APIConnectionError as err:
            raise TeacherUnavailable(f"cannot reach the teacher endpoint {where} ({err}); is the server running?") from None
        except FATAL as err:
            raise TeacherUnavailable(self._fatal_message(err)) from None

    def _fatal_message(self, err: openai.APIStatusError) -> str:
        if err.status_code in (401, 403):
            return (
                f"the teacher endpoint {self.cfg.base_url} refused the API key ({err.status_code}); "
                f"put a valid key in the environment variable {self.cfg.api_key_env}"
            )
        return f"teacher.model {self.cfg.model!r}: the server at {self.cfg.base_url} says 404: {err.message}"

    async def _with_retries(self, call):
        for attempt in range(self.cfg.max_retries + 1):
            try:
                return await call()
            except RETRYABLE as err:
                if attempt == self.cfg.max_retries:
                    raise
                # Full backoff doubles each time; jitter keeps many clients from retrying in lockstep.
                delay = self.cfg.backoff_s * 2**attempt * random.uniform(0.5, 1.0)
                self.retries += 1
                log.warning("teacher request failed (%s); retry %d in %.1fs", _describe(err), attempt + 1, delay)
                await asyncio.sleep(delay)

    def _request(self, problem: Problem | None, sample: int) -> dict:
        question = messages(problem) if problem else [{"role": "user", "content": "Say OK."}]
        key = f"{self.seed}:{problem.id if problem else ''}:{sample}"
        return {
            "model": self.cfg.model,
            "messages": question,
            "temperature": self.cfg.temperature,
            "top_p": self.cfg.top_p,
            "max_tokens": self.cfg.max_tokens,
            # A distinct, reproducible seed per sample: servers that honour it repeat a rerun exactly.
            "seed": int(hashlib.sha256(key.encode()).hexdigest()[:8], 16),
        }

    async def _one(self, client: AsyncOpenAI, gate: asyncio.Semaphore, problem: Problem, sample: int) -> Trace:
        async with gate:
            began = time.perf_counter()
            try:
                response = await self._with_retries(lambda: client.chat.completions.create(**self._request(problem, sample)))
            except FATAL as err:
                raise TeacherUnavailable(self._fatal_message(err)) from None
            except (openai.APIError, ValueError) as err:  # retries spent, or a request the server refuses (400)
                reason = f"request failed after {self.cfg.max_retries + 1} attempts: {_describe(err)}"
                return failed(problem, sample, self.name, self.cfg.model, reason, time.perf_counter() - began)
            return self._trace(problem, sample, response, time.perf_counter() - began)

    def _trace(self, problem: Problem, sample: int, response, seconds: float) -> Trace:
        model = response.model or self.cfg.model
        if not response.choices:
            return failed(problem, sample, self.name, model, "the server returned no choices", seconds)
        choice = response.choices[0]
        message = choice.message
        content = message.content or ""
        reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
        thought, answered = _token_counts(response.usage, reasoning or "", content)
        return from_completion(
            problem,
            sample,
            self.name,
            model,
            content,
            reasoning if isinstance(reasoning, str) else None,
            reasoning_tokens=thought,
            answer_tokens=answered,
            seconds=seconds,
            finish_reason=choice.finish_reason,
        )


async def _drain(tasks: set[asyncio.Task]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


def _token_counts(usage, reasoning: str, content: str) -> tuple[int, int]:
    """`(reasoning, answer)` tokens from `usage`; servers that do not split them get a split by characters."""
    if usage is None:
        return 0, 0
    total = usage.completion_tokens or 0
    details = getattr(usage, "completion_tokens_details", None)
    if details is not None and details.reasoning_tokens is not None:
        return details.reasoning_tokens, total - details.reasoning_tokens
    head = len(reasoning) if reasoning else len(content.partition("</think>")[0]) if "</think>" in content else 0
    thought = round(total * head / max(len(reasoning) + len(content), 1))
    return thought, total - thought


def _describe(err: Exception) -> str:
    if isinstance(err, openai.APITimeoutError):
        return "timed out"
    if isinstance(err, openai.APIStatusError):
        return f"HTTP {err.status_code}: {err.message}"
    return f"{type(err).__name__}: {err}"
