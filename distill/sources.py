"""Problems from outside: a local .jsonl/.json/.parquet file or a Hugging Face dataset, mapped by column.

`load_problems(source, question=..., answer=..., answer_format=...)` reads the rows with `datasets`
and turns each into a `Problem`. A row that cannot be one (no question, no answer, a reference the
verifier cannot read: open-r1's rule) is skipped and counted with its row number and reason, so a
loader never silently drops data; a file or mapping that cannot work at all is a `SourceError`
naming the file, the column and the columns there are.

Answer formats: `plain` (the column is the answer), `gsm8k` (the number after `####`), `boxed` (the
last `\\boxed{}` of a MATH-style worked solution). The verifier travels in `meta["verifier"]`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets

from distill.answers import boxed_contents
from distill.records import Problem
from distill.tasks import FAMILIES, verifier_for
from distill.verify import VERIFIERS, reference_parses

LOCAL_KINDS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
ANSWER_FORMATS = ("plain", "gsm8k", "boxed")


class SourceError(ValueError):
    """A source that cannot be read as problems; the message names the file or dataset and the column."""


def _read(source: str, split: str):
    """The rows as a `datasets.Dataset`, every failure rephrased to say what to fix."""
    path = Path(source)
    if path.suffix in LOCAL_KINDS:
        if not path.is_file():
            raise SourceError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise SourceError(f"{path}: the file is empty")
        if LOCAL_KINDS[path.suffix] == "json":
            try:  # checked here: `datasets` reports bad bytes as a bare "error while generating the dataset"
                blank = not path.read_bytes().decode("utf-8").strip()
            except UnicodeDecodeError as err:
                raise SourceError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from None
            if blank:
                raise SourceError(f"{path}: the file is empty")
        try:
            return datasets.load_dataset(LOCAL_KINDS[path.suffix], data_files=str(path), split="train")
        except Exception as err:  # arrow and datasets raise many types; to the user all mean "unreadable"
            raise SourceError(f"{path}: could not read as {path.suffix[1:]}: {_root(err)}") from err
    if path.exists():
        raise SourceError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(LOCAL_KINDS)}")
    try:
        return datasets.load_dataset(source, split=split)
    except Exception as err:  # offline, unknown name, wrong split, gated: the message below covers each
        raise SourceError(
            f"could not load the Hugging Face dataset {source!r} (split {split!r}): {_root(err)}. "
            "Check the name and split and that the Hub is reachable (or the dataset cached); "
            f"a local {'/'.join(LOCAL_KINDS)} file works offline."
        ) from err


def _root(err: BaseException) -> str:
    while err.__cause__ is not None:
        err = err.__cause__
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def reference_from(value: Any, answer_format: str) -> tuple[str | None, str]:
    """`(reference, why not)` from an answer cell in one of `ANSWER_FORMATS`."""
    text = "" if value is None else str(value).strip()
    if not text:
        return None, "no answer"
    if answer_format == "gsm8k":
        if "####" not in text:
            return None, "no '####' in the answer"
        number = text.rsplit("####", 1)[1].strip().replace(",", "")  # "#### 2,400" means 2400
        return (number, "") if number else (None, "nothing after '####'")
    if answer_format == "boxed":
        boxed = boxed_contents(text.replace("\\fbox{", "\\boxed{"))  # a few MATH solutions use \fbox
        return (boxed[-1], "") if boxed and boxed[-1] else (None, "no \\boxed{} in the solution")
    return text, ""


def tests_from(value: Any) -> list[str]:
    """Code tests from a cell: a list (or JSON list) of assert strings or {stdin, stdout} / {input, output} objects."""
    if isinstance(value, str):
        value = json.loads(value) if value.lstrip().startswith("[") else [value]
    tests = []
    for item in value or []:
        if isinstance(item, dict):
            item = json.dumps({"stdin": item.get("stdin", item.get("input")), "stdout": item.get("stdout", item.get("output"))})
        tests.append(str(item))
    return tests


def load_problems(
    source: str,
    *,
    split: str = "train",
    question: str = "question",
    answer: str | None = "answer",
    answer_format: str = "plain",
    family: str = "custom",
    verifier: str = "math",
    limit: int | None = None,
    tests: str | None = None,
    id_column: str | None = None,
    family_column: str | None = None,
) -> tuple[list[Problem], list[tuple[int, str]]]:
    """`(problems, skipped)`: skipped rows as `(row number from 1, reason)`. `split` applies to Hub
    datasets (a local file is one split); `tests` names the column of code tests (`answer=None`: there
    is no reference, code problems only), `id_column` a column of ids. `family_column`, where the
    source has it, gives each row its family (a built-in family brings its own verifier); rows
    without one take `family` and `verifier`."""
    if answer_format not in ANSWER_FORMATS:
        raise SourceError(f"unknown answer_format {answer_format!r}; expected one of {', '.join(ANSWER_FORMATS)}")
    if verifier not in VERIFIERS:
        raise SourceError(f"unknown verifier {verifier!r}; expected one of {', '.join(VERIFIERS)}")
    if answer is None and verifier != "code":
        raise SourceError(f"the {verifier} verifier needs an answer column")
    rows = _read(source, split)
    if len(rows) == 0:
        raise SourceError(f"{source}: holds no rows")
    wanted = {"question": question, "answer": answer, "tests": tests, "id_column": id_column}
    for role, column in wanted.items():
        if column is not None and column not in rows.column_names:
            raise SourceError(
                f"{source}: no column {column!r} (asked for as {role}); available columns: {', '.join(rows.column_names)}"
            )
    per_row_family = family_column is not None and family_column in rows.column_names
    name = Path(source).stem if Path(source).suffix in LOCAL_KINDS else source.replace("/", "_")
    problems, skipped = [], []
    for number, row in enumerate(rows, start=1):
        if limit is not None and len(problems) >= limit:
            break
        text = "" if row[question] is None else str(row[question]).strip()
        row_family = str(row[family_column]) if per_row_family and row[family_column] else family
        row_verifier = verifier_for(row_family) if row_family in FAMILIES else verifier
        reference, why = reference_from(row[answer], answer_format) if answer else (None, "")
        try:
            cases = tests_from(row[tests]) if tests else []
        except ValueError:  # a JSON string that does not parse
            cases, why = [], "tests are not valid JSON"
        if not text:
            skipped.append((number, "no question"))
        elif row_verifier == "code" and not cases:
            skipped.append((number, why or "no tests"))
        elif row_verifier != "code" and reference is None:
            skipped.append((number, why))
        elif not reference_parses(reference or "", row_verifier, cases):
            skipped.append((number, f"reference {reference!r} cannot be checked by the {row_verifier} verifier"))
        else:
            meta = {"source": source, "split": split, "row": number, "verifier": row_verifier}
            pid = str(row[id_column]) if id_column else f"{name}-{split}-{number:06d}"
            problems.append(Problem(id=pid, family=row_family, question=text, answer=reference or "", tests=cases, meta=meta))
    return problems, skipped
