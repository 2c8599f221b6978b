"""The run report: one self-contained HTML page (plots embedded as base64 PNG, and written beside it as PNG files).

It reads only the work dir and the MLflow store: the config, the data funnel, the SFT loss and GRPO reward curves
(metric history of the stage runs under the parent run in `mlflow_run.json`), the greedy accuracy table, the
thinking-time scaling curves, the latency table, an accuracy-vs-latency chart with one point per artifact, and the
Model Registry versions of this run. The page holds no script and loads nothing from the network.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import mlflow

from pipelines.tracking import tracking_uri
from pipelines.workdir import MissingInput, Workdir, read_json

CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}pre{background:#f6f6f6;padding:1em;max-height:28em;overflow:auto}"
    "img{max-width:100%;display:block;margin:.5em 0 1.5em}.note{color:#666}"
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def scaling_figure(data: dict[str, Any]):
    """Accuracy against average thinking tokens used, one panel per variant: pass@1 ± se, maj@k and pass@k."""
    plt = _pyplot()
    variants = data["variants"]
    figure, axes = plt.subplots(1, max(1, len(variants)), figsize=(6 * max(1, len(variants)), 4), squeeze=False)
    for ax, (variant, points) in zip(axes[0], variants.items(), strict=False):
        x = [p["overall"]["thinking_tokens"] for p in points]
        mean = [p["overall"]["pass@1"] for p in points]
        ax.errorbar(x, mean, yerr=[p["overall"]["pass@1_se"] for p in points], marker="o", capsize=3, label="pass@1 (± se)")
        for k in sorted(set(data["samples"]) - {1}):
            ax.plot(x, [p["overall"][f"maj@{k}"] for p in points], marker="s", label=f"maj@{k}")
            ax.plot(x, [p["overall"][f"pass@{k}"] for p in points], marker="^", linestyle="--", label=f"pass@{k}")
        for xi, yi, p in zip(x, mean, points, strict=True):
            ax.annotate(f"budget {p['budget']}", (xi, yi), textcoords="offset points", xytext=(4, -12), fontsize=7)
        ax.set(xlabel="average thinking tokens used", ylabel="accuracy", title=f"{variant}: thinking time vs accuracy")
        ax.set_ylim(-0.03, 1.03)
        ax.legend(fontsize=7)
    figure.tight_layout()
    return figure


def _funnel_figure(funnel: dict[str, Any]):
    plt = _pyplot()
    stages = [(k, v) for k, v in funnel.items() if "." not in k and k != "yield" and isinstance(v, int | float)]
    figure, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar([k for k, _ in stages], [v for _, v in stages], color="#4c72b0")
    ax.set(ylabel="traces", title=f"data funnel (yield {funnel.get('yield', float('nan')):.2f})")
    ax.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    return figure


def _curves_figure(curves: dict[str, list[tuple[int, float]]]):
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.2), squeeze=False)
    for ax, (name, points) in zip(axes[0], curves.items(), strict=True):
        ax.plot([s for s, _ in points], [v for _, v in points], marker=".")
        ax.set(xlabel="step", title=name)
    figure.tight_layout()
    return figure


def _accuracy_latency_figure(points: list[tuple[str, float, float]]):
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    for name, latency, accuracy in points:
        ax.scatter([latency], [accuracy], s=50)
        ax.annotate(name, (latency, accuracy), textcoords="offset points", xytext=(5, 5))
    ax.set(xlabel="end-to-end latency p50 (ms)", ylabel="accuracy (greedy)", title="accuracy vs latency, per artifact")
    ax.set_ylim(-0.03, 1.03)
    figure.tight_layout()
    return figure


def _accuracy_caption(results: dict[str, Any]) -> str:
    """How far an accuracy can be trusted: the guess line, and the 95% margin at the smallest family."""
    n = min(row["n"] for t in results.values() for row in t["per_family"].values())
    margin = 1.96 * (0.25 / n) ** 0.5  # the widest binomial interval, at an accuracy of one half
    noise = f"With {n} problems a family, accuracy is known to about ±{margin:.0%} (95%): smaller differences are noise."
    if "guess" not in results:
        return noise
    return f"guess gives every problem its family's most common training answer: a model beats chance only above it. {noise}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _stage_runs(client: mlflow.MlflowClient, parent_id: str) -> dict[str, Any]:
    """The newest finished nested run of each stage under the parent run."""
    parent = client.get_run(parent_id)
    query = f"tags.mlflow.parentRunId = '{parent_id}' and attributes.status = 'FINISHED'"
    found: dict[str, Any] = {}
    for run in client.search_runs([parent.info.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"]):
        found.setdefault(run.data.tags.get("stage") or run.data.tags.get("mlflow.runName"), run)
    return found


def _curves(client: mlflow.MlflowClient, stage_runs: dict[str, Any]) -> dict[str, list[tuple[int, float]]]:
    curves = {}
    for stage, metric in (("sft", "loss"), ("rl", "reward"), ("rl", "loss")):
        if stage in stage_runs:
            history = client.get_metric_history(stage_runs[stage].info.run_id, metric)
            if history:
                curves[f"{stage} {metric}"] = [(m.step, m.value) for m in sorted(history, key=lambda m: (m.step, m.timestamp))]
    return curves


def write_report(root: Path, log: bool = True) -> Path:
    """Write `<root>/report/report.html` and its PNGs; log them to the parent MLflow run when `log`."""
    root = Path(root)
    if not (root / "summary.json").exists() or not (root / "mlflow_run.json").exists():
        raise MissingInput(
            f"{root} holds no finished run (no summary.json / mlflow_run.json): run `distill run --workdir {root}`"
        )
    workdir = Workdir(root)
    summary, parent_id = read_json(workdir.summary), read_json(root / "mlflow_run.json")["run_id"]
    metrics = summary.get("metrics", {})
    client = mlflow.MlflowClient(tracking_uri=tracking_uri(workdir))
    stage_runs = _stage_runs(client, parent_id)
    out = root / "report"
    out.mkdir(exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    parts: list[str] = []

    def figure(name: str, fig, alt: str) -> None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        _pyplot().close(fig)
        (out / f"{name}.png").write_bytes(buffer.getvalue())
        encoded = base64.b64encode(buffer.getvalue()).decode()
        parts.append(f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}" data-file="{name}.png">')

    name = summary.get("config", {}).get("name", root.name)
    parts.append(f"<h1>distill run report: {html.escape(name)}</h1>")
    parts.append(f'<p class="note">work dir {html.escape(str(root.resolve()))}; MLflow parent run {parent_id}</p>')
    stages = summary.get("stages", {})
    parts.append(
        "<h2>Stages</h2>"
        + _table(["stage", "seconds", "cache key"], [[s, i.get("seconds"), i.get("key")] for s, i in stages.items()])
    )

    funnel = metrics.get("generate", {}).get("funnel")
    if funnel:
        parts.append("<h2>Data funnel</h2>" + _table(["count", "value"], [[k, v] for k, v in funnel.items()]))
        figure("funnel", _funnel_figure(funnel), "data funnel")

    curves = _curves(client, stage_runs)
    if curves:
        parts.append("<h2>Training curves</h2>")
        figure("training", _curves_figure(curves), "training loss and reward curves")

    results = metrics.get("eval", {})
    if results:
        families = sorted({f for t in results.values() for f in t["per_family"]})
        rows = [
            [v, t["overall"]["accuracy"], *(t["per_family"].get(f, {}).get("accuracy", "") for f in families), t["overall"]["n"]]
            for v, t in results.items()
        ]
        parts.append("<h2>Accuracy (greedy, held-out split)</h2>" + _table(["variant", "overall", *families, "n"], rows))
        parts.append(f"<p>{html.escape(_accuracy_caption(results))}</p>")

    scaling_file = workdir.eval_dir / "scaling.json"
    if scaling_file.exists():
        scaling = read_json(scaling_file)
        ks = sorted(set(scaling["samples"]))
        header = [
            "variant",
            "budget",
            "thinking tokens",
            "pass@1",
            "± se",
            *(f"{m}@{k}" for k in ks if k > 1 for m in ("pass", "maj", "best_of")),
        ]
        rows = []
        for variant, points in scaling["variants"].items():
            for p in points:
                o = p["overall"]
                rows.append(
                    [
                        variant,
                        p["budget"],
                        o["thinking_tokens"],
                        o["pass@1"],
                        o["pass@1_se"],
                        *(o[f"{m}@{k}"] for k in ks if k > 1 for m in ("pass", "maj", "best_of")),
                    ]
                )
        parts.append(
            f"<h2>Thinking time and test-time scaling</h2><p>{scaling['problems']} problems, temperature "
            f"{scaling['temperature']}, {max(ks)} samples a problem per budget; best_of@k picks by format then length.</p>"
            + _table(header, rows)
        )
        figure("scaling", scaling_figure(scaling), "accuracy against thinking tokens")

    latency = metrics.get("bench", {})
    if latency:
        keys = ["ttft_ms_p50", "tpot_ms", "latency_ms_p50", "latency_ms_p95", "tokens_per_s", "peak_rss_mb", "size_mb"]
        parts.append(
            "<h2>Latency</h2>" + _table(["variant", *keys], [[v, *(r.get(k, "") for k in keys)] for v, r in latency.items()])
        )
        points = [(v, r["latency_ms_p50"], results[v]["overall"]["accuracy"]) for v, r in latency.items() if v in results]
        if points:
            figure("accuracy_latency", _accuracy_latency_figure(points), "accuracy against latency per artifact")

    versions = [v for v in client.search_model_versions(f"tags.pipeline_run_id = '{parent_id}'")]
    if versions:
        rows = [[v.name, v.version, v.tags.get("variant", ""), v.tags.get("accuracy", ""), v.source] for v in versions]
        parts.append("<h2>Model registry</h2>" + _table(["registered model", "version", "variant", "accuracy", "source"], rows))

    config_text = (root / "config.yaml").read_text(encoding="utf-8") if (root / "config.yaml").exists() else ""
    parts.append(f"<h2>Config</h2><pre>{html.escape(config_text)}</pre>")
    head = f'<meta charset="utf-8"><title>{html.escape(name)} report</title><style>{CSS}</style>'
    page = f"<!DOCTYPE html><html><head>{head}</head><body>{''.join(parts)}</body></html>"
    (out / "report.html").write_text(page, encoding="utf-8")
    if log:
        client.log_artifacts(parent_id, str(out), "report")
    return out / "report.html"


def publish(workdir: Workdir) -> Path:
    """What `distill run` does last: register the models, then write and log the report (which lists them)."""
    from pipelines.registry import register_models

    register_models(workdir)
    report = write_report(workdir.root)
    print(f"[distill] report: {report}", flush=True)
    return report
