"""`distill generate` with `curate.student_solved`: the base student answers the training problems first, and the
traces of those it gets right are dropped."""

from __future__ import annotations

import json

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from distill.records import problems_from, traces_from
from distill.verify import answer_for, is_correct, verifier_of
from pipelines.workdir import read_jsonl
from student import tiny
from tests.e2e.conftest import distill, runs

SMALL = ["--set", "tasks.train_per_family=20", "--set", "eval.max_new_tokens=16", "--set", "curate.student_solved=true"]


def answering_student(path, answer: str) -> None:
    """A real one-layer Llama whose greedy reply to any question is `answer`: its layer adds nothing to the
    residual stream, so each next token follows from the last alone, and the weights chain the reply's tokens."""
    tokenizer = tiny.build_tokenizer(["Count the letter e in the word tree.", answer], 300)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "?"}], tokenize=False, add_generation_prompt=True)
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    chain = [encode(prompt)[-1], *encode(answer), tokenizer.eos_token_id]
    assert len(set(chain)) == len(chain)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=1,
        num_key_value_heads=1, tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            weight.fill_(1.0 if name.endswith("norm.weight") else 0.0)
        for i, (token, following) in enumerate(zip(chain, chain[1:], strict=False)):
            model.model.embed_tokens.weight[token, i] = 1.0
            model.lm_head.weight[following, i] = 1.0
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))


def generated(workdir) -> tuple[dict, list[dict], dict, list, list]:
    summary = json.loads((workdir / "summary.json").read_text())
    answers = json.loads((workdir / "data" / "student_answers.json").read_text())
    problems = {p.id: p for p in problems_from(read_jsonl(workdir / "data" / "problems_train.jsonl"))}
    kept = traces_from(read_jsonl(workdir / "traces" / "kept.jsonl"))
    rejected = traces_from(read_jsonl(workdir / "traces" / "rejected.jsonl"))
    return summary, answers, problems, kept, rejected


def test_generate_drops_the_problems_the_base_student_solves(tmp_path):
    student, workdir = tmp_path / "student", tmp_path / "solved"
    answering_student(student, "\\boxed{2}")
    done = distill("generate", "--preset", "tiny", "--workdir", str(workdir), *SMALL, "--set", f"student.model={student}")
    assert done.returncode == 0, done.stderr[-3000:]

    summary, answers, problems, kept, rejected = generated(workdir)
    assert sorted(a["id"] for a in answers) == sorted(problems) and len(problems) == 40
    assert {a["output"] for a in answers} == {"\\boxed{2}"}
    for answer in answers:  # graded as eval grades: the same extraction and verifier
        problem = problems[answer["id"]]
        verifier = verifier_of(problem)
        assert answer["correct"] == is_correct(answer_for(answer["output"], verifier), problem.answer, verifier)
    solved = {a["id"] for a in answers if a["correct"]}
    assert solved == {p.id for p in problems.values() if p.answer == "2"} and 0 < len(solved) < len(problems)

    metrics = summary["metrics"]["generate"]
    assert metrics["student_solved_problems"] == len(solved)
    dropped = [t for t in rejected if t.reasons[-1].startswith("student_solved: ")]
    assert {t.problem_id for t in dropped} <= solved and not solved & {t.problem_id for t in kept}
    assert [t.reasons for t in dropped] == [["student_solved: the base student already answers it correctly"]] * len(dropped)
    funnel = metrics["funnel"]
    assert funnel["after_difficulty"] - funnel["after_student_solved"] == len(dropped) > 0
    assert funnel["after_student_solved"] == funnel["kept"] == len(kept) > 0
    assert summary["outputs"]["generate"]["student_answers"] == str(workdir / "data" / "student_answers.json")
    (stage,) = [r for r in runs(workdir) if r.data.tags.get("stage") == "generate"]
    assert stage.data.metrics["funnel.after_student_solved"] == len(kept)
    assert stage.data.params["student.model"] == str(student) and stage.data.params["eval.max_new_tokens"] == "16"


def test_the_tiny_student_is_built_for_the_check_and_solves_nothing(tmp_path):
    workdir = tmp_path / "tiny"
    done = distill("generate", "--preset", "tiny", "--workdir", str(workdir), *SMALL)
    assert done.returncode == 0, done.stderr[-3000:]
    summary, answers, problems, kept, rejected = generated(workdir)
    assert len(answers) == len(problems) == 40 and not any(a["correct"] for a in answers)
    funnel = summary["metrics"]["generate"]["funnel"]
    assert funnel["after_student_solved"] == funnel["after_difficulty"] == len(kept) > 0
    assert not [t for t in rejected if t.reasons[-1].startswith("student_solved")]
    assert not (workdir / "partial" / "generate").exists()  # the stand-in went with the stage's partial work
    assert not (workdir / "models" / "base").exists()  # SFT builds the real one, from the kept traces
