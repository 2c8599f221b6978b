"""Stage 5: accuracy of every model variant (base, SFT, RL, quantized) on the held-out split, greedy, beside
`guess`, the score of answering every problem with its family's most common training answer; then the
thinking-time sweep: sampled accuracy (pass@1 ± se, pass@k, maj@k, best-of-k) against thinking tokens used, per budget."""

from __future__ import annotations

import mlflow

from distill.records import problems_from
from pipelines.config import PipelineConfig
from pipelines.stages import check_variants, loadable_ref, variant_ref
from pipelines.workdir import Workdir, read_jsonl, write_json
from student.evaluate import check_sweep, evaluate, guess_baseline, scaling_sweep


def check(config: PipelineConfig) -> None:
    """Settings read here, checked before any stage starts (`pipelines.run.preflight`)."""
    check_variants(config, "eval.variants", config.eval.variants)
    check_variants(config, "eval.scaling_variants", config.eval.scaling_variants)
    if config.eval.scaling_variants:
        check_sweep(config.eval.budgets, config.eval.samples)


def run(config: PipelineConfig, workdir: Workdir) -> tuple[dict, dict]:
    problems = problems_from(read_jsonl(workdir.require(workdir.problems_eval, "generate")))
    # A GGUF variant is evaluated through transformers on its dequantized weights: the quantization error, honestly.
    refs = {variant: loadable_ref(workdir, variant_ref(config, workdir, variant)) for variant in config.eval.variants}
    guess = guess_baseline(problems_from(read_jsonl(workdir.require(workdir.problems_train, "generate"))), problems)
    results = {"guess": guess} if guess else {}
    for variant, ref in refs.items():
        answers, table = evaluate(
            ref, problems, config.student.instruction, config.eval.max_new_tokens, config.eval.batch_size, desc=f"eval {variant}"
        )
        write_json(workdir.eval_dir / f"{variant}_answers.json", answers)
        mlflow.log_table(
            {k: [a[k] for a in answers] for k in ("id", "family", "predicted", "answer", "correct", "output")},
            f"answers/{variant}.json",
        )
        results[variant] = table
    write_json(workdir.eval_dir / "results.json", results)
    mlflow.log_dict(results, "results.json")
    outputs = {"results": str(workdir.eval_dir / "results.json")}
    if config.eval.scaling_variants:
        outputs.update(scaling(config, workdir, problems))
    return outputs, results


def scaling(config: PipelineConfig, workdir: Workdir, problems: list) -> dict:
    """The sweep over `eval.budgets` for each of `eval.scaling_variants`: `eval/scaling.json`, stepped MLflow
    metrics (`scaling.<variant>.<metric>` at step = budget) and `eval/scaling.png`."""
    from pipelines.report import scaling_figure

    cfg, per_family = config.eval, config.eval.scaling_per_family
    chosen, seen = [], {}
    for problem in problems:
        seen[problem.family] = seen.get(problem.family, 0) + 1
        if not per_family or seen[problem.family] <= per_family:
            chosen.append(problem)
    sweep = {}
    for variant in cfg.scaling_variants:
        points = scaling_sweep(
            loadable_ref(workdir, variant_ref(config, workdir, variant)), chosen, config.student.instruction,
            cfg.budgets, cfg.samples,
            cfg.temperature, cfg.answer_tokens, cfg.batch_size, cfg.extend, config.seed, desc=f"scaling {variant}",
        )  # fmt: skip
        sweep[variant] = points
        for point in points:
            overall = {k: v for k, v in point["overall"].items() if k not in ("n_problems", "n_samples")}
            mlflow.log_metrics(
                {f"scaling.{variant}.{k.replace('@', '_at_')}": float(v) for k, v in overall.items()}, step=point["budget"]
            )
    data = {
        "budgets": cfg.budgets,
        "samples": cfg.samples,
        "temperature": cfg.temperature,
        "problems": len(chosen),
        "variants": sweep,
    }
    write_json(workdir.eval_dir / "scaling.json", data)
    mlflow.log_dict(data, "scaling.json")
    figure = scaling_figure(data)
    figure.savefig(workdir.eval_dir / "scaling.png", dpi=100)
    mlflow.log_figure(figure, "scaling.png")
    figure.clear()
    return {"scaling": str(workdir.eval_dir / "scaling.json"), "scaling_plot": str(workdir.eval_dir / "scaling.png")}
