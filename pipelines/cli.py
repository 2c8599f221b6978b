"""The `distill` command: the whole pipeline, any stage alone, or an evaluation of any model."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from pipelines.config import DEFAULT_PRESET, ConfigError, PipelineConfig, load_config, preset_names, read_yaml

STAGE_HELP = {
    "generate": "make problems, write teacher traces, verify and keep the good ones",
    "sft": "fine-tune the student on the kept traces (TRL SFTTrainer)",
    "rl": "improve the SFT student with GRPO on verifiable rewards (TRL GRPOTrainer)",
    "quantize": "write bitsandbytes NF4 and int8 versions and GGUF files of the final student",
    "eval": "accuracy of each model variant on the held-out split, or of --model on --data",
    "bench": "latency and memory of each model variant",
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        help=f"preset name ({', '.join(preset_names())}) or a YAML file; default: the "
        f"work dir's saved config, else {DEFAULT_PRESET}",
    )
    parser.add_argument("--workdir", type=Path, help="the run's directory (default: runs/<preset>)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set rl.num_generations=4 (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distill", description="Distil a reasoning teacher into a small, fast student.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run every stage in order, skipping those already done")
    _common(run)
    run.add_argument(
        "--force",
        nargs="?",
        const="generate",
        metavar="STAGE",
        help="rerun from STAGE on (default: every stage) even if cached output is still valid",
    )
    for name, text in STAGE_HELP.items():
        stage = commands.add_parser(name, help=text, description=text)
        _common(stage)
        if name == "eval":
            stage.add_argument("--model", help="evaluate this model (a directory or Hub id) instead of the run's variants")
            stage.add_argument("--data", type=Path, help="JSONL of problems: question, answer, optional family")
            stage.add_argument("--out", type=Path, help="where --model results go (default: results.json)")
    report = commands.add_parser("report", help="write RUN_DIR/report/report.html (and its PNGs) and log it to MLflow")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run's work dir")
    serve = commands.add_parser("serve", help="an OpenAI-compatible chat server for a student (127.0.0.1 by default)")
    serve.add_argument("--model", required=True, help="a model directory, .gguf file, packaged name or Hub id")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--api-key",
        default=os.environ.get("DISTILL_API_KEY"),
        help="require this bearer key (default: $DISTILL_API_KEY; none if unset)",
    )
    return parser


def resolve_config(args: argparse.Namespace) -> tuple[PipelineConfig, Path]:
    preset = args.preset
    saved = args.workdir / "config.yaml" if args.workdir else None
    if preset is None and saved is not None and saved.exists():
        try:
            return load_config(None, args.overrides, base=read_yaml(saved)), args.workdir
        except ConfigError as err:
            raise ConfigError(
                f"the config saved in {saved} does not fit this version's config schema ({err}); "
                "pass --preset to start afresh, or use a new --workdir"
            ) from err
    preset = preset or DEFAULT_PRESET
    return load_config(preset, args.overrides), args.workdir or Path("runs") / Path(preset).stem


def eval_file(args: argparse.Namespace, config: PipelineConfig) -> None:
    from distill.sources import load_problems
    from pipelines.workdir import write_json
    from student.evaluate import evaluate

    if not (args.model and args.data):
        raise ConfigError("evaluating a model on a file needs both --model and --data")
    problems, skipped = load_problems(str(args.data), family_column="family")
    for row, reason in skipped:
        print(f"distill: skipping {args.data} row {row}: {reason}", file=sys.stderr)
    if not problems:
        raise ConfigError(f"{args.data}: no usable problems (every row was skipped)")
    answers, table = evaluate(
        args.model, problems, config.student.instruction, config.eval.max_new_tokens, config.eval.batch_size, desc="eval"
    )
    out = args.out or Path("results.json")
    write_json(
        out,
        {
            "model": args.model,
            "data": str(args.data),
            **table,
            "answers": answers,
            "skipped": [{"row": row, "reason": reason} for row, reason in skipped],
        },
    )
    overall = table["overall"]
    print(
        f"accuracy {overall['accuracy']:.3f} on {overall['n']} problems "
        f"(no answer found: {overall['no_answer_rate']:.1%}); written to {out}"
    )


def quiet_libraries() -> None:
    """Keep progress bars and our own lines readable; library chatter stays at warnings."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # bitsandbytes logs a line per int8 matmul on CPU (fp32 inputs cast to fp16): thousands per eval.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from student.serve import serve

        quiet_libraries()
        logging.basicConfig(level=logging.INFO)
        serve(args.model, args.host, args.port, args.api_key)
        return 0
    if args.command == "report":
        from pipelines.report import write_report
        from pipelines.workdir import MissingInput

        try:
            print(f"[distill] report: {write_report(args.run_dir)}")
        except MissingInput as err:
            print(f"distill: error: {err}", file=sys.stderr)
            return 2
        return 0
    from pipelines import distributed

    # A typo in a preset or --set is reported before torch and TRL load, in a second or two.
    try:
        if distributed.refusal(args.command):
            raise ConfigError(distributed.refusal(args.command))
        config, workdir = resolve_config(args)
    except ConfigError as err:
        print(f"distill: error: {err}", file=sys.stderr)
        return 2
    from distill.sources import SourceError
    from pipelines.run import STAGE_NAMES, StageFailed, run
    from pipelines.workdir import IncompatibleWorkdir, MissingInput
    from student.sources import ModelSourceError

    try:
        quiet_libraries()
        if args.command == "eval" and (args.model or args.data):
            eval_file(args, config)
            return 0
        stages = STAGE_NAMES if args.command == "run" else (args.command,)
        summary = run(config, workdir, stages, force_from=getattr(args, "force", None))
    except (ConfigError, SourceError, MissingInput, ModelSourceError, IncompatibleWorkdir) as err:
        print(f"distill: error: {err}", file=sys.stderr)
        return 2
    except StageFailed as err:
        print(f"distill: {err}", file=sys.stderr)
        return 1
    if not distributed.is_main():
        return 0  # the main process reports
    print(f"[distill] summary: {workdir / 'summary.json'}")
    for key, value in summary["headline"].items():
        print(f"  {key:32s} {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
