from distill.records import Trace
from teacher.store import TraceStore


def _trace(i: int, sample: int = 0) -> Trace:
    return Trace(f"p{i}", "letters", sample, "procedural", "m", f"r{i}", f"\\boxed{{{i}}}")


def test_shards_are_whole_and_reopening_lists_what_is_done(tmp_path):
    store = TraceStore(tmp_path, shard_size=3)
    for i in range(7):
        store.add(_trace(i))
    # Seven traces: two whole shards on disk, one trace still buffered (lost if the process died now).
    assert len(list(tmp_path.glob("shard-*.jsonl"))) == 2
    (tmp_path / ".shard-000002.jsonl.tmp").write_text('{"half": ')  # a shard cut off mid-write
    reopened = TraceStore(tmp_path, shard_size=3)
    assert reopened.done() == {(f"p{i}", 0) for i in range(6)}
    assert not list(tmp_path.glob(".*.tmp"))
    reopened.add(_trace(6))
    assert [t.problem_id for t in reopened.traces()] == [f"p{i}" for i in range(7)]
    assert TraceStore(tmp_path, shard_size=3).traces() == reopened.traces()
