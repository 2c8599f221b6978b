"""Load test of the OpenAI-compatible server: requests/s, latency percentiles and failures per concurrency.

    python benchmarks/serve_load.py --model runs/demo/models/rl --out serve_load.json
    python benchmarks/serve_load.py --server http://127.0.0.1:8000/v1 --out serve_load.json   # a running `distill serve`

Without --server it starts `student.serve.create_app` in-process under uvicorn on 127.0.0.1 (a free
port). Each concurrency level sends at most --requests requests and starts none after --max-seconds,
so a slow model cannot make the test run away. Writes JSON and an MLflow run (MLFLOW_TRACKING_URI or
./mlruns). The server generates one request at a time, so requests/s stays flat as concurrency rises
and latency grows with the queue: that is the figure to watch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import mlflow
from openai import AsyncOpenAI

from distill.tasks import make_problems
from student.latency import percentile


@contextmanager
def local_server(model: str):
    """`create_app` under uvicorn in a thread; yields the base URL and the served model name."""
    import uvicorn

    from student.serve import create_app

    app = create_app(model)
    with socket.socket() as s:  # a free port, released just before uvicorn binds it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def level(client: AsyncOpenAI, model: str, questions: list[str], concurrency: int, requests: int, max_seconds: float,
                max_tokens: int) -> dict:  # fmt: skip
    """At most `requests` requests, `concurrency` in flight, none started after `max_seconds`."""
    gate, latencies, failures, tokens = asyncio.Semaphore(concurrency), [], [], 0
    start = time.perf_counter()
    deadline = start + max_seconds

    async def one(i: int) -> None:
        nonlocal tokens
        async with gate:
            if time.perf_counter() > deadline:
                return  # over the time cap: not sent, not counted
            t0 = time.perf_counter()
            try:
                reply = await client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": questions[i % len(questions)]}],
                    max_tokens=max_tokens, temperature=0.0,
                )  # fmt: skip
            except Exception as exc:  # every kind counts as a failure; the test must finish to report it
                failures.append(f"{type(exc).__name__}: {exc}"[:200])
                return
            latencies.append(time.perf_counter() - t0)
            tokens += reply.usage.completion_tokens if reply.usage else 0

    await asyncio.gather(*(one(i) for i in range(requests)))
    wall = time.perf_counter() - start
    done = len(latencies)
    return {
        "concurrency": concurrency,
        "sent": done + len(failures),
        "completed": done,
        "failures": len(failures),
        "failure_examples": failures[:3],
        "seconds": wall,
        "requests_per_s": done / wall,
        "completion_tokens_per_s": tokens / wall,
        "latency_ms_p50": percentile(latencies, 0.5) * 1000 if latencies else 0.0,
        "latency_ms_p99": percentile(latencies, 0.99) * 1000 if latencies else 0.0,
    }


async def run_levels(base_url: str, args) -> dict:
    questions = [p.question for p in make_problems(["letters", "arithmetic"], 8, "eval", seed=0)]
    client = AsyncOpenAI(base_url=base_url, api_key=args.api_key, max_retries=0, timeout=args.timeout)
    model = (await client.models.list()).data[0].id
    results = {}
    for c in args.concurrency:
        print(f"concurrency {c} ...", file=sys.stderr, flush=True)
        results[str(c)] = await level(client, model, questions, c, args.requests, args.max_seconds, args.max_tokens)
        r = results[str(c)]
        print(f"  {r['requests_per_s']:.2f} req/s, p50 {r['latency_ms_p50']:.0f} ms, p99 {r['latency_ms_p99']:.0f} ms, "
              f"{r['failures']} failures", file=sys.stderr)  # fmt: skip
    await client.close()
    return {"model": model, "levels": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--model", help="serve this model in-process (directory, .gguf, packaged name)")
    where.add_argument("--server", help="base URL of a running server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--api-key", default="none")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=32, help="at most this many per concurrency level")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="no new request after this, per level")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=300.0, help="per request, seconds")
    parser.add_argument("--out", default="serve_load.json")
    parser.add_argument("--experiment", default="distill-benchmarks")
    args = parser.parse_args(argv)

    if args.server:
        report = asyncio.run(run_levels(args.server, args))
    else:
        with local_server(args.model) as url:
            report = asyncio.run(run_levels(url, args))
    report["settings"] = {k: v for k, v in vars(args).items() if k not in ("out", "experiment", "api_key")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))

    mlflow.set_experiment(args.experiment)
    with mlflow.start_run(run_name="serve_load"):
        mlflow.log_params({k: str(v) for k, v in report["settings"].items()})
        for c, r in report["levels"].items():
            mlflow.log_metrics({f"c{c}.{k}": v for k, v in r.items() if isinstance(v, int | float)})
        mlflow.log_dict(report, "serve_load.json")
    print(f"wrote {out}", file=sys.stderr)
    return 0 if all(r["failures"] == 0 for r in report["levels"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
