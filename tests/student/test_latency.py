"""The latency report's shape on the tiny model: every figure present and sane. Never its speed."""

from pathlib import Path

import pytest

from student.gguf_export import export_gguf
from student.latency import copy_bandwidth, measure, percentile, plot
from student.runtimes import choose, installed

QUESTIONS = ["How many r's are in strawberry?", "What is 12 + 30?"]


def test_percentile_interpolates():
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.99) == 5.0


def test_copy_bandwidth_is_positive():
    assert copy_bandwidth(megabytes=8, repeats=2) > 0


@pytest.fixture(scope="module")
def report(tiny_student):
    return measure(
        tiny_student["dir"], QUESTIONS, "", 4, warmup=1, repeats=1, concurrency=[1, 3], percentiles=[50, 90, 99], bandwidth=1e9
    )


def test_report_schema(report):
    for kind in ("ttft_ms", "itl_ms", "latency_ms"):
        assert [k for k in report if k.startswith(f"{kind}_p")] == [f"{kind}_p50", f"{kind}_p90", f"{kind}_p99"]
        assert report[f"{kind}_p50"] <= report[f"{kind}_p90"] <= report[f"{kind}_p99"]
    assert report["requests"] == 2 and report["new_tokens_per_request"] == 4
    assert report["tpot_ms"] > 0 and report["tokens_per_s"] > 0 and report["decode_tokens_per_s"] > 0
    assert set(report["concurrency"]) == {"1", "3"}
    for row in report["concurrency"].values():
        assert row["tokens_per_s"] > 0 and row["requests_per_s"] > 0
    assert report["runtime"] == "transformers" and report["batched"] is True
    assert report["size_mb"] > 0 and report["weight_mb"] > 0 and report["peak_rss_mb"] > 0


def test_bandwidth_limit_is_bandwidth_over_weight_bytes(report):
    assert report["bandwidth_gb_s"] == 1.0
    assert report["limit_tokens_per_s"] == pytest.approx(1e9 / (report["weight_mb"] * 2**20))
    assert report["bandwidth_fraction"] == pytest.approx(report["decode_tokens_per_s"] / report["limit_tokens_per_s"])


def test_plot_writes_png(report, tmp_path):
    plot({"a": report, "b": report}, tmp_path / "latency.png")
    assert (tmp_path / "latency.png").read_bytes()[:4] == b"\x89PNG"


def test_auto_runtime_for_gguf(tiny_student, tmp_path):
    gguf = export_gguf(tiny_student["dir"], tmp_path / "student-q8_0.gguf", "q8_0")
    assert choose("auto", tiny_student["dir"]) == "transformers"
    assert choose("auto", str(gguf)) == ("llama_cpp" if installed("llama_cpp") else "transformers")
    with pytest.raises(ValueError, match="unknown runtime"):
        choose("onnx", str(gguf))


def test_llama_cpp_report(tiny_student, tmp_path):
    pytest.importorskip("llama_cpp")
    gguf = export_gguf(tiny_student["dir"], tmp_path / "student-q8_0.gguf", "q8_0")
    report = measure(str(gguf), QUESTIONS, "", 4, warmup=1, repeats=1, concurrency=[2], runtime="llama_cpp", bandwidth=1e9)
    assert report["runtime"] == "llama_cpp" and report["batched"] is False
    assert report["requests"] == 2 and report["weight_mb"] == pytest.approx(Path(gguf).stat().st_size / 2**20)
    assert report["concurrency"]["2"]["tokens_per_s"] > 0


def test_vllm_report(tiny_student):
    pytest.importorskip("vllm")
    report = measure(tiny_student["dir"], QUESTIONS, "", 4, warmup=1, repeats=1, concurrency=[2], runtime="vllm", bandwidth=1e9)
    assert report["runtime"] == "vllm" and report["requests"] == 2
