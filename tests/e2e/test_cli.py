"""The real `distill` command on the tiny preset, checked through its files and its MLflow store."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.conftest import distill, runs, store

STAGES = ["generate", "sft", "rl", "quantize", "eval", "bench"]
# The tiny preset, made smaller still so the suite stays quick; every stage still runs for real.
FAST = [
    "--set",
    "sft.max_steps=12",
    "--set",
    "tasks.eval_per_family=6",
    "--set",
    "rl.max_steps=2",
    "--set",
    "eval.max_new_tokens=48",
    "--set",
    "rl.max_completion_length=48",
    "--set",
    "eval.scaling_variants=[]",  # the thinking-time sweep has its own test (test_report.py)
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e") / "demo"
    done = distill("run", "--preset", "tiny", "--workdir", str(workdir), *FAST)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


def test_summary_names_every_output_and_headline(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["config"]["student"]["model"] == "tiny"
    outputs = summary["outputs"]
    for key, stage in [("sft", "sft"), ("rl", "rl"), ("nf4", "quantize"), ("int8", "quantize")]:
        assert os.path.isdir(outputs[stage][key])
    headline = summary["headline"]
    for variant in ["base", "sft", "rl", "nf4", "int8"]:
        assert 0.0 <= headline[f"accuracy.{variant}"] <= 1.0
        assert {f"accuracy.{variant}.letters", f"accuracy.{variant}.arithmetic"} <= set(headline)
    assert headline["trace_yield"] == 1.0
    # The chance line: every held-out problem answered with its family's most common training answer.
    guess = json.loads((run_dir / "eval" / "results.json").read_text())["guess"]
    held_out = [json.loads(line) for line in (run_dir / "data" / "problems_eval.jsonl").read_text().splitlines()]
    letters = [p["answer"] for p in held_out if p["family"] == "letters"]
    assert headline["accuracy.guess.letters"] == letters.count(guess["guesses"]["letters"]) / len(letters)
    assert summary["metrics"]["sft"]["final_loss"] < summary["metrics"]["sft"]["first_loss"]
    bench = summary["metrics"]["bench"]
    for variant in ["rl", "nf4", "int8"]:
        assert bench[variant]["tokens_per_s"] > 0 and bench[variant]["ttft_ms_p50"] > 0
        assert bench[variant]["latency_ms_p95"] >= bench[variant]["latency_ms_p50"] > 0
        assert bench[variant]["size_mb"] > 0 and bench[variant]["peak_rss_mb"] > 0
    assert json.loads((run_dir / "bench" / "latency.json").read_text())["variants"].keys() == bench.keys()


def test_mlflow_has_one_parent_and_a_nested_run_per_stage(run_dir):
    client = store(run_dir)
    experiment = client.get_experiment_by_name("distill-tiny")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    assert parent.data.params["rl.num_generations"] == "4" and parent.data.params["student.model"] == "tiny"
    assert parent.data.metrics["accuracy.rl"] >= 0
    children = {r.data.tags["mlflow.runName"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert sorted(children) == sorted(STAGES)
    for name, run in children.items():
        assert run.info.status == "FINISHED" and run.data.metrics["seconds"] > 0, name
    assert children["generate"].data.metrics["funnel.generated"] == 400
    assert "loss" in children["sft"].data.metrics  # TRL's MLflow callback logs into the stage run
    assert "reward" in children["rl"].data.metrics
    assert children["eval"].data.metrics["nf4.overall.accuracy"] >= 0
    assert children["bench"].data.metrics["int8.tokens_per_s"] > 0
    artifacts = {a.path for a in client.list_artifacts(children["generate"].info.run_id)}
    assert "sample_traces.json" in artifacts
    assert "config.yaml" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    inputs = children["generate"].inputs.dataset_inputs
    assert {d.dataset.name for d in inputs} >= {"kept", "problems_train", "problems_eval"}


def test_quantized_models_reload_and_generate(run_dir):
    from student.inference import generate
    from student.load import load_model, load_tokenizer

    for variant in ["nf4", "int8"]:
        path = str(run_dir / "models" / variant)
        ((text, n_tokens),) = generate(load_model(path), load_tokenizer(path), ["What is 100 + 23?"], "", 8, 1)
        assert n_tokens > 0


def test_second_run_is_cached_and_a_stage_runs_alone(run_dir):
    again = distill("run", "--preset", "tiny", "--workdir", str(run_dir), *FAST)
    assert again.returncode == 0, again.stderr[-2000:]
    assert all(f"stage {s}: cached, skipping" in again.stdout for s in STAGES)
    alone = distill("eval", "--workdir", str(run_dir))
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert "stage eval done" in alone.stdout and "stage sft" not in alone.stdout
    found = runs(run_dir)
    assert len([r for r in found if "mlflow.parentRunId" not in r.data.tags]) == 1
    assert len([r for r in found if r.data.tags.get("mlflow.runName") == "eval"]) == 2


def test_eval_any_model_on_a_jsonl_file(run_dir, tmp_path):
    data = tmp_path / "problems.jsonl"
    rows = [
        {"question": "What is 2 + 2?", "answer": "4", "family": "arithmetic"},
        {"question": 'How many l\'s are in "hello"?', "answer": "2", "family": "letters"},
        {"question": "Name a prime.", "answer": "7"},
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "results.json"
    done = distill(
        "eval",
        "--model",
        str(run_dir / "models" / "rl"),
        "--data",
        str(data),
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--set",
        "eval.max_new_tokens=16",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(out.read_text())
    assert set(results["per_family"]) == {"arithmetic", "letters", "custom"}
    assert results["overall"]["n"] == 3 and len(results["answers"]) == 3
    assert all("output" in a and "correct" in a for a in results["answers"])


def test_bad_input_fails_fast_with_a_clear_message(tmp_path):
    typo = distill("run", "--preset", "tiny", "--workdir", str(tmp_path / "w"), "--set", "rl.num_generation=4")
    assert typo.returncode == 2
    assert "unknown config key rl.num_generation" in typo.stderr and "num_generations" in typo.stderr
    assert not (tmp_path / "w").exists()
    misnamed = distill("run", "--preset", "tiny", "--workdir", str(tmp_path / "w"), "--set", "rl.rewards=[correct]")
    assert misnamed.returncode == 2 and "rl.rewards: unknown reward 'correct'" in misnamed.stderr
    assert not (tmp_path / "w").exists()  # refused before generation, not after SFT
    early = distill("sft", "--preset", "tiny", "--workdir", str(tmp_path / "fresh"))
    assert early.returncode == 1 and "run `distill generate --workdir" in early.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "1+1?", "answer": "2"}\n{"question": "no answer"}\n')
    missing = distill("eval", "--model", "x", "--data", str(bad), "--preset", "tiny")
    assert missing.returncode == 2
    assert f"skipping {bad} row 2: no answer" in missing.stderr and "unknown model 'x'" in missing.stderr
    bad.write_text('{"question": "1+1?", "answer": "2"}\nnot json\n')
    broken = distill("eval", "--model", "x", "--data", str(bad), "--preset", "tiny")
    assert broken.returncode == 2 and f"{bad}: could not read as jsonl" in broken.stderr


def test_an_rl_change_reruns_rl_and_what_follows_only(run_dir):
    changed = distill("run", "--preset", "tiny", "--workdir", str(run_dir), *FAST, "--set", "rl.families=[letters]")
    assert changed.returncode == 0, changed.stderr[-2000:]
    assert "stage generate: cached" in changed.stdout and "stage sft: cached" in changed.stdout
    for stage in ["rl", "quantize", "eval", "bench"]:
        assert f"stage {stage} done" in changed.stdout
    rl = json.loads((run_dir / "summary.json").read_text())["metrics"]["rl"]
    assert rl["prompts.letters"] == rl["prompts"] > 0 and "prompts.arithmetic" not in rl  # GRPO drew letters only
    forced = distill("run", "--workdir", str(run_dir), "--force", "bench")
    assert "stage eval: cached" in forced.stdout and "stage bench done" in forced.stdout
