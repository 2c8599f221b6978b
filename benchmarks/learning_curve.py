"""How much fine-tuning the student needs: held-out accuracy after SFT on more and more procedural traces.

    python benchmarks/learning_curve.py --steps 20 200 800 --lr 1.5e-4 5e-4 --out learning_curve.json
    python benchmarks/learning_curve.py --steps 20 --lr 1.5e-4 5e-4 1e-3 --seeds 0 1 2 --max-new-tokens 240

Each point fine-tunes the base student from scratch with the pipeline's own `student.sft.train` for `steps`
steps of `--batch-size` traces, one pass over `steps x batch` fresh training problems (half letters, half
arithmetic, from the train split, written by the procedural teacher), then grades it greedily with
`student.evaluate.evaluate` on the same held-out problems as every other point; the base model is the first
point. A seed changes the training problems, the traces' wording and the batch order, not the eval set.

On one H100 the default grid takes about 8 minutes; on 2 CPU cores one 20-step point takes about 10 minutes
to train and as long again to grade (`--eval-per-family 20` there; README, "How much training the student
needs"). Results go to `--out` (JSON) and to MLflow (experiment
`distill-benchmarks`; `MLFLOW_TRACKING_URI`, else a SQLite store beside `--out`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

FAMILIES = ["letters", "arithmetic"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="packaged name, local directory or Hub id")
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 200, 800], help="SFT steps, one point each")
    parser.add_argument("--lr", type=float, nargs="+", default=[1.5e-4, 5e-4], help="learning rates, crossed with --steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="repeats of every point")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--slip-rate", type=float, default=0.1, help="share of traces that slip and correct themselves")
    parser.add_argument("--eval-per-family", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=256, help="the longest procedural trace is about 235 tokens")
    parser.add_argument("--eval-batch-size", type=int, default=200)
    parser.add_argument("--instruction", default="", help="default: the student config's step-by-step instruction")
    parser.add_argument("--scratch", type=Path, default=Path("learning_curve_models"), help="trained models go here")
    parser.add_argument("--out", type=Path, default=Path("learning_curve.json"))
    return parser.parse_args(argv)


def training_rows(examples: int, seed: int, slip_rate: float, instruction: str) -> list[dict]:
    """`examples` prompt-completion rows, as the SFT stage builds them from kept traces."""
    from distill.tasks import make_problems
    from student.chat import sft_rows
    from teacher.backends import ProceduralTeacher

    problems = make_problems(FAMILIES, -(-examples // len(FAMILIES)), "train", seed=seed)
    traces = ProceduralTeacher(seed=seed, slip_rate=slip_rate).traces(problems, 1)
    return sft_rows(problems, traces, instruction)[:examples]


def grade(ref: str, problems: list, args: argparse.Namespace, name: str) -> dict:
    from student.evaluate import evaluate

    start = time.perf_counter()
    answers, table = evaluate(ref, problems, args.instruction, args.max_new_tokens, args.eval_batch_size, desc=f"eval {name}")
    return {
        "accuracy": table["overall"]["accuracy"],
        **{f"accuracy.{family}": row["accuracy"] for family, row in table["per_family"].items()},
        **{f"no_answer.{family}": row["no_answer_rate"] for family, row in table["per_family"].items()},
        "mean_tokens": table["overall"]["mean_tokens"],
        "eval_seconds": round(time.perf_counter() - start, 1),
    }


def point(base: str, steps: int, lr: float, seed: int, problems: list, args: argparse.Namespace) -> dict:
    from datasets import Dataset

    from pipelines.config import SFTConfig
    from student.sft import loss_summary, train

    name = f"steps{steps}-lr{lr:g}-seed{seed}"
    rows = training_rows(steps * args.batch_size, seed, args.slip_rate, args.instruction)
    cfg = SFTConfig(
        max_steps=steps, batch_size=args.batch_size, learning_rate=lr, logging_steps=max(1, steps // 10), save_steps=steps
    )
    start = time.perf_counter()
    result = train(base, Dataset.from_list(rows), cfg, args.scratch / name, args.scratch / f"{name}.checkpoints", seed, "auto")
    seconds = time.perf_counter() - start
    trained = {"steps": steps, "lr": lr, "seed": seed, "examples": len(rows), "train_seconds": round(seconds, 1)}
    return trained | loss_summary(result["log"]) | grade(str(args.scratch / name), problems, args, name)


def log_to_mlflow(report: dict, out: Path) -> None:
    import mlflow

    from pipelines.tracking import store_uri

    mlflow.set_tracking_uri(store_uri(out.parent / "mlflow.db"))
    mlflow.set_experiment("distill-benchmarks")
    with mlflow.start_run(run_name="learning_curve"):
        mlflow.log_params({k: v for k, v in report.items() if k not in ("base", "points")})
        mlflow.log_metrics({f"base.{k}": v for k, v in report["base"].items()})
        for row in report["points"]:
            # Stepped by the number of training examples: MLflow draws one curve per learning rate and seed.
            key = f"lr{row['lr']:g}.seed{row['seed']}"
            metrics = {f"{key}.{k}": v for k, v in row.items() if k.startswith(("accuracy", "no_answer"))}
            mlflow.log_metrics(metrics, step=row["examples"])
        mlflow.log_dict(report, "learning_curve.json")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from distill.tasks import make_problems
    from pipelines.config import StudentConfig
    from student.sources import resolve

    args.instruction = args.instruction or StudentConfig().instruction
    base = resolve(args.model)
    problems = make_problems(FAMILIES, args.eval_per_family, "eval", seed=0)
    report = {
        "model": args.model,
        "batch_size": args.batch_size,
        "slip_rate": args.slip_rate,
        "eval_per_family": args.eval_per_family,
        "max_new_tokens": args.max_new_tokens,
        "base": grade(base, problems, args, "base"),
        "points": [],
    }
    print(json.dumps({"base": report["base"]}), flush=True)
    for steps in args.steps:
        for lr in args.lr:
            for seed in args.seeds:
                report["points"].append(point(base, steps, lr, seed, problems, args))
                print(json.dumps(report["points"][-1]), flush=True)
                args.out.write_text(json.dumps(report, indent=2))  # a crash keeps the points already measured
    log_to_mlflow(report, args.out)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
