"""A trace store that survives `kill -9`: traces go to disk in small JSONL shards as they arrive.

Each shard is written under a temporary name and renamed, so a shard on disk is always whole; a
crash loses at most the traces buffered since the last shard. Reopening the store lists what is
done, so a rerun generates only what is missing and never duplicates a trace.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from distill.records import Trace


class TraceStore:
    def __init__(self, root: Path, shard_size: int):
        if shard_size < 1:
            raise ValueError(f"teacher.shard_size must be at least 1, got {shard_size}")
        self.root, self.shard_size = root, shard_size
        root.mkdir(parents=True, exist_ok=True)
        for leftover in root.glob(".*.tmp"):  # a shard that was being written when the process died
            leftover.unlink()
        shards = sorted(root.glob("shard-*.jsonl"))
        self._stored = [Trace(**json.loads(line)) for shard in shards for line in shard.read_text().splitlines()]
        self._next_shard = len(shards)
        self._buffer: list[Trace] = []

    def done(self) -> set[tuple[str, int]]:
        """`(problem_id, sample)` of every trace already on disk."""
        return {(t.problem_id, t.sample) for t in self._stored}

    def add(self, trace: Trace) -> None:
        self._buffer.append(trace)
        if len(self._buffer) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        path = self.root / f"shard-{self._next_shard:06d}.jsonl"
        tmp = self.root / f".{path.name}.tmp"
        with tmp.open("w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(asdict(t), ensure_ascii=False) + "\n" for t in self._buffer)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        self._next_shard += 1
        self._stored += self._buffer
        self._buffer = []

    def traces(self) -> list[Trace]:
        """Everything stored, in the order it was generated."""
        self.flush()
        return list(self._stored)
