"""The run report on a small tiny run: scaling sweep, HTML page rendered in headless Chromium, Model Registry entries."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.e2e.conftest import distill, store

# The tiny preset cut down further: every stage, the sweep and the report still run for real.
SMALL = [
    *("--set", "sft.max_steps=4", "--set", "tasks.eval_per_family=3", "--set", "rl.max_steps=1"),
    *("--set", "eval.max_new_tokens=16", "--set", "rl.max_completion_length=16", "--set", "eval.variants=[sft,rl,nf4]"),
    *("--set", "eval.scaling_variants=[rl]"),
    *("--set", "eval.budgets=[0,2,4,8]", "--set", "eval.scaling_per_family=2", "--set", "eval.answer_tokens=6"),
    *(
        "--set",
        "bench.variants=[rl,nf4]",
        "--set",
        "bench.prompts=1",
        "--set",
        "bench.repeats=1",
        "--set",
        "bench.max_new_tokens=8",
    ),
]
CHECK = """<script>window.addEventListener("load", () => {
  const imgs = [...document.images], bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0));
  document.body.insertAdjacentHTML("beforeend", `<pre id="imgcheck">images=${imgs.length} broken=${bad.length}</pre>`);
});</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def image_check(page, tmp_path) -> tuple[int, int]:
    """(images, broken) as Chromium sees them: a copy of the page beside it, with a load-time check appended."""
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", CHECK + "</body>"), encoding="utf-8")
    flags = [
        *("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"),
        *("--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=5000"),
    ]
    try:
        done = subprocess.run(
            [chromium(), *flags, "--dump-dom", probe.resolve().as_uri()], capture_output=True, text=True, timeout=120
        )
    finally:
        probe.unlink()
    found = re.search(r'id="imgcheck">images=(\d+) broken=(\d+)<', done.stdout)
    assert found, f"no check result from chromium (rc {done.returncode}): {done.stderr[-2000:]}"
    return int(found[1]), int(found[2])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("report") / "run"
    done = distill("run", "--preset", "tiny", "--workdir", str(workdir), *SMALL)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


def test_scaling_sweep_covers_budgets_and_k(run_dir):
    scaling = json.loads((run_dir / "eval" / "scaling.json").read_text())
    points = scaling["variants"]["rl"]
    assert [p["budget"] for p in points] == [0, 2, 4, 8]
    for p in points:
        overall = p["overall"]
        assert overall["n_samples"] == 8 and overall["n_problems"] == 4
        assert 0 <= overall["thinking_tokens"] <= p["budget"]
        for k in (1, 4, 8):
            assert 0.0 <= overall[f"maj@{k}"] <= 1.0 and overall[f"pass@{k}"] >= overall["pass@1"] - 1e-9
    assert points[0]["overall"]["thinking_tokens"] == 0
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    assert 0.0 <= results["rl"]["overall"]["accuracy"] <= 1.0  # the greedy table keeps its shape


@pytest.mark.skipif(chromium() is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_renders_every_image_in_headless_chromium(run_dir, tmp_path):
    page = run_dir / "report" / "report.html"
    text = page.read_text()
    for section in ("Data funnel", "Training curves", "Accuracy", "Thinking time", "Latency", "Model registry", "Config"):
        assert section in text, section
    assert "most common training answer" in text and "(95%)" in text  # the accuracy table says what chance and noise are
    assert "<script" not in text and "http://" not in text and "https://" not in text  # self-contained
    pngs = {p.name for p in (run_dir / "report").glob("*.png")}
    assert pngs == {"funnel.png", "training.png", "scaling.png", "accuracy_latency.png"}
    assert image_check(page, tmp_path) == (4, 0)
    broken = tmp_path / "broken.html"  # the check itself catches an image that does not load
    broken.write_text('<html><body><img src="data:image/png;base64,AAAA"><img src="missing.png"></body></html>')
    assert image_check(broken, tmp_path) == (2, 2)


def test_report_command_rewrites_and_logs_it(run_dir):
    (run_dir / "report" / "report.html").unlink()
    done = distill("report", str(run_dir))
    assert done.returncode == 0, done.stderr[-2000:]
    assert (run_dir / "report" / "report.html").exists()
    client = store(run_dir)
    parent = json.loads((run_dir / "mlflow_run.json").read_text())["run_id"]
    assert "report/report.html" in {a.path for a in client.list_artifacts(parent, "report")}
    missing = distill("report", str(run_dir / "nowhere"))
    assert missing.returncode == 2 and "no finished run" in missing.stderr


def test_registry_holds_final_and_quantized_models_with_metrics_and_data(run_dir, monkeypatch):
    client = store(run_dir)
    parent = json.loads((run_dir / "mlflow_run.json").read_text())["run_id"]
    generate = [
        r for r in client.search_runs([client.get_run(parent).info.experiment_id]) if r.data.tags.get("stage") == "generate"
    ]
    digests = {d.dataset.name: d.dataset.digest for d in generate[0].inputs.dataset_inputs}
    for variant in ("rl", "nf4", "int8"):
        (version,) = client.search_model_versions(f"name = 'distill-tiny-{variant}'")
        tags = version.tags
        assert tags["variant"] == variant and tags["pipeline_run_id"] == parent
        assert version.source == (run_dir / "models" / variant).resolve().as_uri()
        assert tags["data.kept.digest"] == digests["kept"] and tags["data.problems_train.digest"] == digests["problems_train"]
        assert client.get_run(version.run_id).data.tags["mlflow.parentRunId"] == parent  # the stage run; params via parent
    assert float(client.get_model_version("distill-tiny-rl", "1").tags["accuracy"]) >= 0
    assert float(client.get_model_version("distill-tiny-nf4", "1").tags["tokens_per_s"]) > 0
    assert "tokens_per_s" not in client.get_model_version("distill-tiny-int8", "1").tags  # int8 was not benched here
    from pipelines.registry import register_models
    from pipelines.workdir import Workdir

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the run's own store, as the CLI used
    register_models(Workdir(run_dir))  # idempotent: same cache keys, no new versions
    assert len(client.search_model_versions("name = 'distill-tiny-rl'")) == 1
