"""Rank detection, the shipped accelerate configs, and the GPU benchmark's command line (no GPU needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines import distributed
from pipelines.workdir import Workdir

CONFIGS = Path(__file__).parents[2] / "pipelines" / "accelerate"


def test_one_process_is_main_and_never_waits(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert distributed.is_main() and not distributed.is_distributed()
    distributed.barrier()  # no process group is started for one process
    assert distributed.refusal("generate") is None


def test_only_training_stages_run_under_several_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    assert not distributed.is_main()
    assert distributed.refusal("sft") is None and distributed.refusal("rl") is None
    for command in ("generate", "eval", "bench", "quantize", "run"):
        assert f"distill {command}` runs in one process" in distributed.refusal(command)


def test_other_ranks_leave_the_staging_dir_to_the_main_one(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    workdir = Workdir(tmp_path)
    (tmp_path / "models" / "sft").mkdir(parents=True)
    with workdir.staging(workdir.model("sft")) as out:
        assert out.name == ".sft.tmp" and not out.exists()
    assert (tmp_path / "models" / "sft").exists()


@pytest.mark.parametrize("name", ["ddp", "fsdp", "zero2", "zero3"])
def test_accelerate_configs_load_and_say_how_to_launch(name):
    from accelerate.commands.config.config_args import load_config_from_file

    path = CONFIGS / f"{name}.yaml"
    text = path.read_text()
    assert f"accelerate launch --config_file pipelines/accelerate/{name}.yaml" in text
    assert "--machine_rank 1 --main_process_ip" in text
    assert yaml.safe_load(text)["mixed_precision"] == "bf16"
    config = load_config_from_file(str(path))
    assert config.distributed_type.value in ("MULTI_GPU", "FSDP", "DEEPSPEED")


def test_gpu_benchmark_imports_and_stops_without_cuda():
    script = Path(__file__).parents[2] / "benchmarks" / "gpu_training.py"
    shown = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "--peak-tflops" in shown.stdout
    import torch

    if not torch.cuda.is_available():
        refused = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
        assert refused.returncode == 1 and "needs a CUDA GPU" in refused.stderr
