"""Teacher backends: each turns problems into Trace records the same way.

Every teacher has `traces(problems, samples) -> Iterator[Trace]` and yields each trace as soon as it
is done, so the trace store writes durable shards while generation runs. Model backends are imported
only when chosen: `vllm` is an optional extra and `transformers` is slow to import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from teacher.backends.procedural import ProceduralTeacher


def _procedural(cfg: Any, seed: int) -> ProceduralTeacher:
    return ProceduralTeacher(seed=seed, slip_rate=cfg.slip_rate)


def _transformers(cfg: Any, seed: int):
    from teacher.backends.hf import TransformersTeacher

    return TransformersTeacher(cfg, seed)


def _vllm(cfg: Any, seed: int):
    from teacher.backends.vllm_engine import VLLMTeacher

    return VLLMTeacher(cfg, seed)


def _openai(cfg: Any, seed: int):
    from teacher.backends.openai_api import OpenAITeacher

    return OpenAITeacher(cfg, seed)


BACKENDS: dict[str, Callable[[Any, int], Any]] = {
    "procedural": _procedural,
    "transformers": _transformers,
    "vllm": _vllm,
    "openai": _openai,
}


def check(teacher_config: Any) -> None:
    if teacher_config.backend not in BACKENDS:
        raise ValueError(f"teacher.backend: unknown backend {teacher_config.backend!r}; available: {', '.join(BACKENDS)}")
    if teacher_config.backend != "procedural" and not teacher_config.model:
        raise ValueError(f"teacher.model: the {teacher_config.backend} backend needs a model (a Hub id, a dir or a served name)")


def make_teacher(teacher_config: Any, seed: int):
    """The backend `teacher_config.backend` names (a `TeacherConfig`), built from its settings."""
    check(teacher_config)
    return BACKENDS[teacher_config.backend](teacher_config, seed)


__all__ = ["BACKENDS", "ProceduralTeacher", "check", "make_teacher"]
