"""Real TRL training steps, quantization and generation on a tiny model (seconds, not minutes)."""

from pathlib import Path

import torch
from datasets import Dataset

from distill.verify import verifier_of
from pipelines.config import RLConfig, SFTConfig
from student import rl, sft
from student.chat import prompt_messages
from student.evaluate import evaluate
from student.inference import generate
from student.load import load_model, load_tokenizer
from student.quantize import quantize
from student.sources import ModelSourceError


def test_sft_loss_falls(tiny_student, tmp_path):
    cfg = SFTConfig(max_steps=16, batch_size=8, learning_rate=5e-3, logging_steps=4)
    log = sft.train(
        tiny_student["dir"], Dataset.from_list(tiny_student["rows"]), cfg, tmp_path / "sft", tmp_path / "ck", 0, "auto"
    )["log"]
    losses = [e["loss"] for e in log if "loss" in e]
    assert len(losses) == 4 and losses[-1] < losses[0] * 0.85
    assert (tmp_path / "sft" / "model.safetensors").exists()
    load_model(str(tmp_path / "sft"))


def test_grpo_step_runs_with_verifier_rewards(tiny_student, tmp_path):
    prompts = Dataset.from_list(
        [
            {"prompt": prompt_messages(p.question, ""), "answer": p.answer, "verifier": verifier_of(p)}
            for p in tiny_student["problems"][:8]
        ]
    )
    cfg = RLConfig(max_steps=2, batch_size=4, num_generations=4, max_completion_length=24, learning_rate=1e-4, logging_steps=1)
    before = load_model(tiny_student["dir"]).state_dict()
    log = rl.train(tiny_student["dir"], prompts, cfg, tmp_path / "rl", tmp_path / "ck", 0, "auto")["log"]
    assert [e for e in log if "reward" in e]
    assert all("rewards/correctness_reward/mean" in e for e in log if "reward" in e)
    after = load_model(str(tmp_path / "rl")).state_dict()
    assert set(before) == set(after)


def test_quantized_students_reload_and_generate(tiny_student, tmp_path):
    for method in ("nf4", "int8"):
        footprint = quantize(tiny_student["dir"], tmp_path / method, method)
        model, tokenizer = load_model(str(tmp_path / method)), load_tokenizer(str(tmp_path / method))
        assert footprint < load_model(tiny_student["dir"]).get_memory_footprint()
        assert any(p.dtype in (torch.uint8, torch.int8) for p in model.parameters())
        ((text, n_tokens),) = generate(model, tokenizer, ["What is 12 + 30?"], "", max_new_tokens=6, batch_size=1)
        assert isinstance(text, str) and 0 < n_tokens <= 6


def test_evaluate_grades_every_answer(tiny_student):
    problems = tiny_student["problems"][:6]
    answers, table = evaluate(tiny_student["dir"], problems, "", max_new_tokens=8, batch_size=3)
    assert [a["id"] for a in answers] == [p.id for p in problems]
    assert set(table["per_family"]) == {p.family for p in problems}
    assert table["overall"]["n"] == 6 and 0 <= table["overall"]["no_answer_rate"] <= 1
    assert all(set(a) >= {"output", "predicted", "correct", "tokens"} for a in answers)


def test_model_path_errors_are_clear(tmp_path):
    import pytest

    with pytest.raises(ModelSourceError, match="does not exist"):
        load_model(str(tmp_path / "nope"))
    with pytest.raises(ModelSourceError, match="no config.json"):
        load_model(str(Path(tmp_path)))
