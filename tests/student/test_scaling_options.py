"""SFT packing and Liger, GRPO with vLLM: what reaches TRL, and the errors when a package is missing."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest

from pipelines.config import RLConfig, SFTConfig
from student import rl, sft


def test_packing_is_padding_free_only_with_flash_attention_2(capsys):
    grouped = {"packing": False, "train_sampling_strategy": "group_by_length"}
    assert sft.packing_args(False, "flash_attention_2", group_by_length=False) == {"packing": False}
    assert sft.packing_args(False, "sdpa", group_by_length=True) == grouped
    assert sft.packing_args(True, "flash_attention_2", group_by_length=True) == {
        "packing": True,
        "packing_strategy": "bfd",
        "padding_free": True,
    }
    assert sft.packing_args(True, "sdpa", group_by_length=True) == grouped
    assert "needs FlashAttention-2" in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("liger_kernel") is not None, reason="liger-kernel is installed")
def test_liger_without_the_package_says_how_to_install():
    with pytest.raises(ValueError, match="pip install liger-kernel"):
        sft.check(SFTConfig(use_liger_kernel=True))
    sft.check(SFTConfig())


def test_vllm_settings_reach_grpo():
    assert rl.vllm_args(RLConfig()) == {"use_vllm": False}
    server = RLConfig(use_vllm=True, vllm_mode="server", vllm_server_base_url="http://10.0.0.5:8000")
    assert rl.vllm_args(server) == {
        "use_vllm": True,
        "vllm_mode": "server",
        "vllm_gpu_memory_utilization": 0.3,
        "vllm_server_base_url": "http://10.0.0.5:8000",
    }
    from trl import GRPOConfig

    names = set(GRPOConfig.__dataclass_fields__)
    assert set(rl.vllm_args(server)) <= names


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_vllm_without_the_package_says_how_to_install():
    with pytest.raises(ValueError, match=r"\[vllm\]"):
        rl.check(RLConfig(use_vllm=True))
    with pytest.raises(ValueError, match="colocate or server"):
        rl.check(SimpleNamespace(**{**RLConfig().__dict__, "vllm_mode": "remote"}))
