"""The MLflow Model Registry: the final student and each quantized artifact, so "which data and config made this
model?" is answered from MLflow alone.

One registered model per artifact kind, `<pipeline name>-<variant>` (`distill-tiny-rl`, `distill-tiny-nf4`, ...):
the fp student and its quantized forms load differently and are chosen between, so each gets its own version line
("the latest nf4") instead of versions of one model that are not interchangeable. A version is registered by
reference: its source is the model directory in the work dir (`file://…/models/<variant>`), not a copy, so a 540 MB
student is not stored twice; its run is the stage run that wrote it (whose parent holds the whole config as params).
Its tags hold the eval and latency metrics, the digests of the datasets the generate stage logged, the pipeline run
and the stage's cache key. Registering is idempotent: a version with the same cache key is reused and only its tags
are refreshed (a rerun that changes nothing adds no version; one that retrains adds one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from pipelines.stages import VARIANT_STAGE
from pipelines.tracking import tracking_uri
from pipelines.workdir import Workdir, read_json

REGISTERED_STAGES = ("rl", "quantize")  # the final student and its quantized forms


def _tags(summary: dict[str, Any], variant: str, digests: dict[str, str]) -> dict[str, str]:
    metrics, tags = summary.get("metrics", {}), {}
    table = metrics.get("eval", {}).get(variant)
    if table:
        tags["accuracy"] = table["overall"]["accuracy"]
        tags.update({f"accuracy.{f}": row["accuracy"] for f, row in table["per_family"].items()})
    for key in ("tokens_per_s", "latency_ms_p50", "latency_ms_p95", "ttft_ms_p50", "size_mb", "peak_rss_mb"):
        if key in metrics.get("bench", {}).get(variant, {}):
            tags[key] = metrics["bench"][variant][key]
    tags.update({f"data.{name}.digest": digest for name, digest in digests.items()})
    return {k: f"{v:.4g}" if isinstance(v, float) else str(v) for k, v in tags.items()}


def register_models(workdir: Workdir) -> list[Any]:
    """Register (or refresh) every finished final/quantized model of this run; returns the model versions."""
    from pipelines.report import _stage_runs

    root = workdir.root
    summary, parent_id = read_json(workdir.summary), read_json(root / "mlflow_run.json")["run_id"]
    name = summary.get("config", {}).get("name") or read_json(root / "mlflow_run.json").get("name", "distill")
    client = mlflow.MlflowClient(tracking_uri=tracking_uri(workdir))
    stage_runs = _stage_runs(client, parent_id)
    digests = {}
    if "generate" in stage_runs:
        digests = {d.dataset.name: d.dataset.digest for d in stage_runs["generate"].inputs.dataset_inputs}
    versions = []
    for variant, stage in VARIANT_STAGE.items():
        model_dir, manifest = workdir.model(variant), workdir.manifest(stage)
        if stage not in REGISTERED_STAGES or not model_dir.is_dir() or not manifest.exists() or stage not in stage_runs:
            continue
        key, model = read_json(manifest)["key"], f"{name}-{variant}"
        try:
            client.create_registered_model(model, description=f"{variant} student of the `{name}` distillation pipeline")
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        tags = {"variant": variant, "pipeline_run_id": parent_id, "stage_key": key, **_tags(summary, variant, digests)}
        existing = [v for v in client.search_model_versions(f"name = '{model}'") if v.tags.get("stage_key") == key]
        version = existing[0] if existing else None
        if version is None:
            version = client.create_model_version(
                model,
                Path(model_dir).resolve().as_uri(),
                run_id=stage_runs[stage].info.run_id,
                tags=tags,
                description=_describe(tags),
            )
        else:
            for k, v in tags.items():
                client.set_model_version_tag(model, version.version, k, v)
            client.update_model_version(model, version.version, description=_describe(tags))
        versions.append(client.get_model_version(model, version.version))
    return versions


def _describe(tags: dict[str, str]) -> str:
    lines = [f"`{tags['variant']}` model of pipeline run {tags['pipeline_run_id']} (its params are the full config)."]
    lines += [f"- {k}: {v}" for k, v in tags.items() if k not in ("variant", "pipeline_run_id")]
    return "\n".join(lines)
