"""Stage 5: accuracy of every model variant (base, SFT, RL, quantized) on the held-out split."""

from __future__ import annotations

import mlflow

from distill.records import problems_from
from pipelines.config import PipelineConfig
from pipelines.stages import variant_ref
from pipelines.workdir import Workdir, read_jsonl, write_json
from student.evaluate import evaluate


def run(config: PipelineConfig, workdir: Workdir) -> tuple[dict, dict]:
    problems = problems_from(read_jsonl(workdir.require(workdir.problems_eval, "generate")))
    refs = {variant: variant_ref(config, workdir, variant) for variant in config.eval.variants}
    results = {}
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
    return {"results": str(workdir.eval_dir / "results.json")}, results
