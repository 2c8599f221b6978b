"""Latency and throughput of one or more models on fixed prompts, against this machine's bandwidth limit.

    python benchmarks/latency.py --model smollm2-135m-instruct --model runs/smol/models/nf4 \\
        --model runs/smol/models/gguf/student-q4_0.gguf --max-new-tokens 32 --out latency.json

Each --model is a packaged name, a model directory (bitsandbytes ones included) or a .gguf file
(llama.cpp when installed, else transformers on its dequantized weights; force with --runtime).
Writes JSON (--out), a PNG plot beside it, and an MLflow run (metrics `<name>.<figure>`, the plot
and the JSON as artifacts) in MLFLOW_TRACKING_URI or ./mlruns. Timings on a shared machine are noisy:
repeat the run and compare ratios measured in the same run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import mlflow

from distill.tasks import make_problems
from student.latency import copy_bandwidth, measure, plot
from student.runtimes import RUNTIMES, choose
from student.sources import resolve

INSTRUCTION = "Think step by step inside <think></think>, then give the final answer in \\boxed{}."


def label(ref: str) -> str:
    path = Path(ref.rstrip("/"))
    return path.stem if path.suffix == ".gguf" else path.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="repeat to compare models")
    parser.add_argument("--out", default="latency.json")
    parser.add_argument("--prompts", type=int, default=2, help="fixed held-out problems (letters, arithmetic)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--percentiles", type=float, nargs="+", default=[50, 90, 99])
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto")
    parser.add_argument("--instruction", default=INSTRUCTION)
    parser.add_argument("--experiment", default="distill-benchmarks")
    args = parser.parse_args(argv)

    # Seeded held-out problems: the same prompts on every run and machine.
    questions = [p.question for p in make_problems(["letters", "arithmetic"], args.prompts, "eval", seed=0)][: args.prompts]
    bandwidth = copy_bandwidth()
    print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + write)", file=sys.stderr)
    results = {}
    for ref in args.model:
        name = label(ref)
        load_ref = None if choose(args.runtime, ref) == "llama_cpp" else resolve(ref)
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        results[name] = measure(
            ref,
            questions,
            args.instruction,
            args.max_new_tokens,
            args.warmup,
            args.repeats,
            concurrency=args.concurrency,
            percentiles=args.percentiles,
            runtime=args.runtime,
            load_ref=load_ref,
            bandwidth=bandwidth,
        )
        r = results[name]
        print(
            f"  {r['runtime']}: {r['decode_tokens_per_s']:.1f} tok/s decode, {r['bandwidth_fraction']:.0%} of the "
            f"{r['limit_tokens_per_s']:.0f} tok/s bandwidth limit, TTFT p50 {r['ttft_ms_p50']:.0f} ms",
            file=sys.stderr,
        )
    first = next(iter(results.values()))
    for r in results.values():  # relative to the first model, all measured in this run
        r["decode_speedup_vs_first"] = r["decode_tokens_per_s"] / first["decode_tokens_per_s"]
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "copy_bandwidth_gb_s": bandwidth / 1e9},
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "experiment")},
        "models": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    figure = plot(results, out.with_suffix(".png"))

    mlflow.set_experiment(args.experiment)
    with mlflow.start_run(run_name="latency"):
        mlflow.log_params({k: str(v) for k, v in report["settings"].items()})
        mlflow.log_metric("copy_bandwidth_gb_s", bandwidth / 1e9)
        for name, r in results.items():
            flat = {f"{name}.{k}": v for k, v in r.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            flat |= {f"{name}.c{c}.{k}": v for c, row in r["concurrency"].items() for k, v in row.items()}
            mlflow.log_metrics(flat)
        mlflow.log_figure(figure, "latency.png")
        mlflow.log_dict(report, "latency.json")
    print(f"wrote {out} and {out.with_suffix('.png')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
