"""The two records that flow through the pipeline, and their conversion to `datasets` rows."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from datasets import Dataset


@dataclass
class Problem:
    """A question with a checkable reference answer."""

    id: str
    family: str
    question: str
    answer: str
    tests: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trace:
    """One teacher (or student) attempt at a problem: reasoning, final text and its verdict."""

    problem_id: str
    family: str
    sample: int
    backend: str
    model: str
    reasoning: str
    answer_text: str
    reasoning_tokens: int = 0
    answer_tokens: int = 0
    verified: bool = False
    reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def text(self) -> str:
        """The assistant turn the student learns: `<think>` block, blank line, final answer."""
        return f"<think>\n{self.reasoning}\n</think>\n\n{self.answer_text}"


def _to_row(record: Problem | Trace) -> dict[str, Any]:
    row = asdict(record)
    # Arrow needs one schema for a column; families keep different metadata, so it travels as JSON.
    if "meta" in row:
        row["meta"] = json.dumps(row["meta"], sort_keys=True)
    return row


def to_dataset(records: list[Problem] | list[Trace], kind: type[Problem] | type[Trace]) -> Dataset:
    """Records to a `datasets.Dataset`; an empty list still gets the record's columns."""
    if not records:
        return Dataset.from_dict({f.name: [] for f in fields(kind)})
    return Dataset.from_list([_to_row(r) for r in records])


def problems_from(dataset: Dataset) -> list[Problem]:
    return [Problem(**{**row, "meta": json.loads(row["meta"] or "{}")}) for row in dataset]


def traces_from(dataset: Dataset) -> list[Trace]:
    return [Trace(**row) for row in dataset]
