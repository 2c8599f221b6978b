"""Orchestration: typed configs and presets, stage caching, MLflow tracking, reports, the CLI."""
