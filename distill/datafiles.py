"""Problems from local JSONL files: one object per line with `question`, `answer`, optional `family`."""

from __future__ import annotations

import json
from pathlib import Path

from distill.records import Problem


class DataFileError(ValueError):
    """A problem file that cannot be read; the message names the file and line."""


def load_problem_file(path: str | Path, default_family: str = "custom") -> list[Problem]:
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"{path}: no such file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataFileError(f"{path}: not UTF-8 text ({err})") from err
    problems = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFileError(f"{path}:{number}: not valid JSON ({err.msg})") from err
        if not isinstance(row, dict):
            raise DataFileError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        missing = [k for k in ("question", "answer") if row.get(k) in (None, "")]
        if missing:
            raise DataFileError(f"{path}:{number}: missing {' and '.join(missing)}")
        problems.append(
            Problem(
                id=str(row.get("id", f"{path.stem}-{number}")),
                family=str(row.get("family") or default_family),
                question=str(row["question"]),
                answer=str(row["answer"]),
            )
        )
    if not problems:
        raise DataFileError(f"{path}: holds no problems")
    return problems
