"""Real TRL training steps, quantization and generation on a tiny model (seconds, not minutes)."""

from pathlib import Path

import pytest
import torch
from datasets import Dataset

from distill.verify import verifier_of
from pipelines.config import LoraConfig, RLConfig, SFTConfig
from student import rl, sft
from student.chat import prompt_messages
from student.evaluate import evaluate
from student.inference import generate
from student.load import load_model, load_tokenizer
from student.quantize import quantize
from student.sources import ModelSourceError
from student.training import adapter


def test_sft_loss_falls(tiny_student, tmp_path):
    cfg = SFTConfig(max_steps=16, batch_size=8, learning_rate=5e-3, logging_steps=4)
    log = sft.train(
        tiny_student["dir"], Dataset.from_list(tiny_student["rows"]), cfg, tmp_path / "sft", tmp_path / "ck", 0, "auto"
    )["log"]
    losses = [e["loss"] for e in log if "loss" in e]
    assert len(losses) == 4 and losses[-1] < losses[0] * 0.85
    assert (tmp_path / "sft" / "model.safetensors").exists()
    load_model(str(tmp_path / "sft"))


def changed_weights(before: str, after: Path) -> set[str]:
    """Names of the tensors that differ between two saved models; both must hold the same names."""
    old, new = load_model(before).state_dict(), load_model(str(after)).state_dict()
    assert set(old) == set(new)
    return {name for name in old if not torch.equal(old[name], new[name])}


def test_lora_sft_learns_and_saves_a_plain_merged_model(tiny_student, tmp_path):
    cfg = SFTConfig(max_steps=8, batch_size=8, learning_rate=2e-2, logging_steps=4, lora=LoraConfig(rank=8))
    log = sft.train(
        tiny_student["dir"], Dataset.from_list(tiny_student["rows"]), cfg, tmp_path / "sft", tmp_path / "ck", 0, "auto"
    )["log"]
    losses = [e["loss"] for e in log if "loss" in e]
    # Only just: the random tiny model's embeddings, frozen under LoRA, keep its logits near uniform (6.2 nats).
    assert losses[-1] < losses[0]
    # Later stages (RL, quantizers, GGUF export) read a plain model: the adapter is merged, not left beside it.
    assert (tmp_path / "sft" / "model.safetensors").exists() and not (tmp_path / "sft" / "adapter_config.json").exists()
    load_tokenizer(str(tmp_path / "sft"))
    changed = changed_weights(tiny_student["dir"], tmp_path / "sft")
    # Only the adapted linear layers moved; embeddings and norms are the base model's.
    assert changed and all(name.endswith("_proj.weight") for name in changed)


def test_lora_settings_are_checked():
    assert adapter(LoraConfig()) is None
    assert adapter(LoraConfig(rank=4)).lora_alpha == 8
    assert adapter(LoraConfig(rank=4, target_modules=["q_proj", "v_proj"])).target_modules == {"q_proj", "v_proj"}
    with pytest.raises(ValueError, match="rank and alpha must be >= 0"):
        adapter(LoraConfig(rank=-1))
    with pytest.raises(ValueError, match="lora.target_modules is empty"):
        adapter(LoraConfig(rank=4, target_modules=[]))


def grpo_prompts(tiny_student) -> Dataset:
    return Dataset.from_list(
        [
            {"prompt": prompt_messages(p.question, ""), "answer": p.answer, "verifier": verifier_of(p)}
            for p in tiny_student["problems"][:8]
        ]
    )


def test_grpo_step_runs_with_verifier_rewards(tiny_student, tmp_path):
    prompts = grpo_prompts(tiny_student)
    cfg = RLConfig(max_steps=2, batch_size=4, num_generations=4, max_completion_length=24, learning_rate=1e-4, logging_steps=1)
    log = rl.train(tiny_student["dir"], prompts, cfg, tmp_path / "rl", tmp_path / "ck", 0, "auto")["log"]
    assert [e for e in log if "reward" in e]
    assert all("rewards/correctness_reward/mean" in e for e in log if "reward" in e)
    changed_weights(tiny_student["dir"], tmp_path / "rl")  # asserts the saved model holds the base's tensor names


def test_grpo_with_lora_saves_a_plain_merged_model(tiny_student, tmp_path):
    cfg = RLConfig(
        max_steps=2, batch_size=4, num_generations=4, max_completion_length=24, learning_rate=1e-2, lora=LoraConfig(rank=4)
    )
    log = rl.train(tiny_student["dir"], grpo_prompts(tiny_student), cfg, tmp_path / "rl", tmp_path / "ck", 0, "auto")["log"]
    assert [e for e in log if "reward" in e]
    assert not (tmp_path / "rl" / "adapter_config.json").exists()
    assert all(name.endswith("_proj.weight") for name in changed_weights(tiny_student["dir"], tmp_path / "rl"))


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
    with pytest.raises(ModelSourceError, match="does not exist"):
        load_model(str(tmp_path / "nope"))
    with pytest.raises(ModelSourceError, match="no config.json"):
        load_model(str(Path(tmp_path)))


def test_grpo_rollouts_run_the_tool_and_mask_its_output_out_of_the_loss(tiny_student, tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    from distill import tools
    from tests.scripted import scripted

    tokenizer, prompts = load_tokenizer(tiny_student["dir"]), grpo_prompts(tiny_student).select(range(4))
    args = GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_completion_length=48, report_to=[],
        bf16=False,
    )  # fmt: skip
    trainer = GRPOTrainer(
        model=load_model(tiny_student["dir"]), reward_funcs=[lambda completions, **_: [0.0] * len(completions)],
        args=args, train_dataset=prompts, processing_class=tokenizer, rollout_func=rl.tool_rollouts,
    )  # fmt: skip
    with scripted(trainer.model, tokenizer, "<python>6 * 7</python>", "\\boxed{42}"):
        out = rl.tool_rollouts(list(prompts["prompt"]), trainer)
    output = tokenizer.encode(tools.answer("<python>6 * 7</python>"), add_special_tokens=False)
    for ids, mask in zip(out["completion_ids"], out["env_mask"], strict=True):
        text = tokenizer.decode(ids, skip_special_tokens=True)
        assert text == tools.call("6 * 7", "42") + "\n\\boxed{42}" and ids[-1] == tokenizer.eos_token_id
        start = mask.index(0)
        assert mask == [1] * start + [0] * len(output) + [1] * (len(ids) - start - len(output))
        assert ids[start : start + len(output)] == output
