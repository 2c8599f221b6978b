"""Stage 3: GRPO from the SFT student, rewarded by the same verifiers that filter and evaluate."""

from __future__ import annotations

import random
from collections import Counter

from datasets import Dataset

from distill.records import problems_from
from distill.verify import verifier_of
from pipelines.config import PipelineConfig
from pipelines.workdir import Workdir, read_jsonl
from student import rl
from student.chat import prompt_messages
from student.training import adapter


def check(config: PipelineConfig) -> None:
    """Settings read here, checked before any stage starts (`pipelines.run.preflight`)."""
    rl.check(config.rl)
    adapter(config.rl.lora)
    known = config.tasks.families + ([config.source.family] if config.source.path else [])
    unknown = [family for family in config.rl.families if family not in known]
    if unknown:
        raise ValueError(f"rl.families: {unknown[0]!r} is not a family of this run ({', '.join(known)})")


def run(config: PipelineConfig, workdir: Workdir) -> tuple[dict, dict]:
    start = str(workdir.require(workdir.model("sft"), "sft"))
    problems = problems_from(read_jsonl(workdir.require(workdir.problems_train, "generate")))
    problems = [p for p in problems if not config.rl.families or p.family in config.rl.families]
    random.Random(config.seed).shuffle(problems)
    drawn = problems[: config.rl.problems]
    rows = [
        {
            "prompt": prompt_messages(p.question, config.student.instruction),
            "answer": p.answer,
            "verifier": verifier_of(p),
            "tests": p.tests,
        }
        for p in drawn
    ]
    with workdir.staging(workdir.model("rl")) as out:
        result = rl.train(
            start, Dataset.from_list(rows), config.rl, out, workdir.partial("rl"), config.seed, config.student.dtype
        )
    rewards = [entry["reward"] for entry in result["log"] if "reward" in entry]
    metrics = {"prompts": len(rows), "resumed_from_step": result["resumed_from_step"]}
    metrics |= {f"prompts.{family}": n for family, n in sorted(Counter(p.family for p in drawn).items())}
    if rewards:
        metrics |= {"first_reward": rewards[0], "final_reward": rewards[-1], "mean_reward": sum(rewards) / len(rewards)}
    return {"rl": str(workdir.model("rl"))}, metrics
