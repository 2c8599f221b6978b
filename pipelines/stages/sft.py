"""Stage 2: supervised fine-tuning of the student on the kept traces."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset

from distill import hardware
from distill.records import problems_from, traces_from
from pipelines import distributed
from pipelines.config import PipelineConfig
from pipelines.workdir import Workdir, read_jsonl
from student import sft, tiny
from student.chat import sft_rows
from student.training import adapter


def check(config: PipelineConfig) -> None:
    """Settings read here, checked before any stage starts (`pipelines.run.preflight`)."""
    sft.check(config.sft)
    adapter(config.sft.lora)
    hardware.dtype(config.student.dtype)


def build_tiny(config: PipelineConfig, texts: list[str], out: Path) -> None:
    """The `tiny` student: a random Llama (seeded) with a byte-level BPE tokenizer trained on `texts`, saved to `out`."""
    student = config.student
    tokenizer = tiny.build_tokenizer(texts, student.tiny_vocab_size)
    model = tiny.build_model(tokenizer, student.tiny_hidden_size, student.tiny_layers, student.tiny_heads, config.seed)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def prepare_base(config: PipelineConfig, workdir: Workdir, texts: list[str]) -> str:
    """The untrained student: built and saved here for `tiny`, otherwise the configured reference."""
    student = config.student
    if student.model != "tiny":
        return student.model
    if not distributed.is_main():  # under several processes the main one builds it; the rest wait and load it
        distributed.barrier()
        return str(workdir.model("base"))
    with workdir.staging(workdir.model("base")) as out:
        build_tiny(config, texts, out)
    distributed.barrier()
    return str(workdir.model("base"))


def run(config: PipelineConfig, workdir: Workdir) -> tuple[dict, dict]:
    kept = traces_from(read_jsonl(workdir.require(workdir.kept, "generate")))
    if not kept:
        raise ValueError(f"{workdir.kept} holds no verified traces: nothing to fine-tune on")
    rows = sft_rows(problems_from(read_jsonl(workdir.problems_train)), kept, config.student.instruction)
    base = prepare_base(config, workdir, [r["prompt"][0]["content"] + r["completion"][0]["content"] for r in rows])

    with workdir.staging(workdir.model("sft")) as out:
        result = sft.train(
            base, Dataset.from_list(rows), config.sft, out, workdir.partial("sft"), config.seed, config.student.dtype
        )
    metrics = {"examples": len(rows), "resumed_from_step": result["resumed_from_step"], **sft.loss_summary(result["log"])}
    return {"base": base, "sft": str(workdir.model("sft"))}, metrics
