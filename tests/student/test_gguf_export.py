"""GGUF export of a real tiny Llama, read back with the gguf reader, transformers and (if installed) llama.cpp."""

import copy
import logging
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from student.gguf_export import SENSITIVE, export_gguf, tensor_quant
from student.tiny import build_model, build_tokenizer

WORDS = ("strawberry", "banana", "mississippi", "letter", "bookkeeper", "apple", "orange", "committee", "balloon", "coffee")
SENTENCES = [
    f"<think> {a} + {b} = {a + b} </think> \\boxed{{{a + b}}}" for a in (3, 12, 25, 47, 68, 99, 123, 456) for b in (4, 30, 51, 77)
]
SENTENCES += [
    f"<think> Spell {w}: {', '.join(w)}. The letter {c} appears {w.count(c)} times. </think> \\boxed{{{w.count(c)}}}"
    for w in WORDS
    for c in "aer"
]
SAMPLE = "<|im_start|>user\nWhat is 12 + 30?<|im_end|>\n<|im_start|>assistant\n<think> 12 + 30 = 42 </think> \\boxed{42}"
LAYER_TENSORS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", "attn_norm", "ffn_norm")
HF_LAYER = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}


def spread_weights(model, seed: int):
    """Re-draw the matrices at std 0.2. At the usual 0.02 attention is near uniform and greedy decoding
    repeats one token, which would hide a wrong q/k order; at 0.2 it changes every generated token."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 2:
                parameter.normal_(0, 0.2)
    return model.eval()


def save(model, tokenizer, path: Path) -> Path:
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tokenizer = build_tokenizer(SENTENCES, 512)
    model = spread_weights(build_model(tokenizer, hidden=64, layers=2, heads=4, seed=0), seed=0)
    return {"tokenizer": tokenizer, "model": model, "dir": save(model, tokenizer, tmp_path_factory.mktemp("tiny"))}


@pytest.fixture(scope="module")
def tiny_gqa(tiny, tmp_path_factory):
    """SmolLM2's shape: fewer key/value heads than query heads, so k is permuted by its own head count."""
    config = copy.deepcopy(tiny["model"].config)
    config.num_key_value_heads = 2
    model = spread_weights(LlamaForCausalLM(config), seed=1)
    return {"tokenizer": tiny["tokenizer"], "model": model, "dir": save(model, tiny["tokenizer"], tmp_path_factory.mktemp("gqa"))}


def unpermute(weight: np.ndarray, n_head: int) -> np.ndarray:
    """The inverse of llama.cpp's q/k row order, as transformers' GGUF loader applies it."""
    return weight.reshape(n_head, weight.shape[0] // n_head // 2, 2, *weight.shape[1:]).swapaxes(2, 1).reshape(weight.shape)


def dequantized(tensor, shape, config) -> np.ndarray:
    """A tensor the gguf reader read, as float32 in transformers' layout (q and k rows back in its order)."""
    weight = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(shape)
    if ".attn_q." in tensor.name:
        return unpermute(weight, config.num_attention_heads)
    if ".attn_k." in tensor.name:
        return unpermute(weight, config.num_key_value_heads)
    return weight


def hf_name(gguf_name: str) -> str:
    if gguf_name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gguf_name == "output_norm.weight":
        return "model.norm.weight"
    _, layer, kind, _ = gguf_name.split(".")
    return f"model.layers.{layer}.{HF_LAYER[kind]}.weight"


def hf_weight(model, gguf_name: str) -> np.ndarray:
    return model.state_dict()[hf_name(gguf_name)].numpy()


@pytest.mark.parametrize(
    "quant, matrix_type, bound",
    [
        ("f32", gguf.GGMLQuantizationType.F32, 0.0),
        ("f16", gguf.GGMLQuantizationType.F16, 1e-3),
        ("q8_0", gguf.GGMLQuantizationType.Q8_0, 0.02),
        ("q4_0", gguf.GGMLQuantizationType.Q4_0, 0.15),
    ],
)
def test_round_trip_through_the_gguf_reader(tiny, tmp_path, quant, matrix_type, bound):
    model, tokenizer, config = tiny["model"], tiny["tokenizer"], tiny["model"].config
    path = export_gguf(tiny["dir"], tmp_path / f"tiny-{quant}.gguf", quant)
    assert path == tmp_path / f"tiny-{quant}.gguf" and [p.name for p in tmp_path.iterdir()] == [path.name]
    reader = gguf.GGUFReader(path)
    field = {name: f.contents() for name, f in reader.fields.items()}

    assert field["general.architecture"] == "llama"
    assert field["general.file_type"] == {"f32": 0, "f16": 1, "q8_0": 7, "q4_0": 2}[quant]
    assert (field["llama.block_count"], field["llama.embedding_length"], field["llama.feed_forward_length"]) == (2, 64, 256)
    assert (field["llama.attention.head_count"], field["llama.attention.head_count_kv"]) == (4, 4)
    assert field["llama.context_length"] == 2048 and field["llama.vocab_size"] == len(tokenizer) == config.vocab_size
    assert field["llama.rope.freq_base"] == pytest.approx(10000.0)
    assert field["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(config.rms_norm_eps)
    assert (field["tokenizer.ggml.model"], field["tokenizer.ggml.pre"]) == ("gpt2", "gpt-2")
    assert field["tokenizer.chat_template"] == tokenizer.chat_template
    tokens, types = field["tokenizer.ggml.tokens"], field["tokenizer.ggml.token_type"]
    assert tokens == [tokenizer.convert_ids_to_tokens(i) for i in range(len(tokenizer))]
    kinds = {tokens[i]: t for i, t in enumerate(types)}
    assert [kinds[t] for t in ("<|pad|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "Ġ")] == [3, 3, 3, 4, 4, 1]
    assert len(field["tokenizer.ggml.merges"]) > 100 and all(len(m.split(" ")) == 2 for m in field["tokenizer.ggml.merges"])
    ids = (field["tokenizer.ggml.bos_token_id"], field["tokenizer.ggml.eos_token_id"], field["tokenizer.ggml.padding_token_id"])
    assert ids == (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    assert field["tokenizer.ggml.add_bos_token"] is False

    expected = {"token_embd.weight", "output_norm.weight"} | {f"blk.{i}.{t}.weight" for i in range(2) for t in LAYER_TENSORS}
    assert {t.name for t in reader.tensors} == expected  # tied embeddings: no `output`
    errors = {}
    for tensor in reader.tensors:
        original = hf_weight(model, tensor.name)
        assert [int(n) for n in reversed(tensor.shape)] == list(original.shape), tensor.name
        expected_type = matrix_type if original.ndim == 2 else gguf.GGMLQuantizationType.F32
        # Tied, token_embd makes the logits; attn_q, attn_k, attn_v and ffn_down are the layers' most sensitive matrices.
        if quant == "q4_0" and (tensor.name == "token_embd.weight" or any(f".{t}." in tensor.name for t in SENSITIVE)):
            expected_type = gguf.GGMLQuantizationType.Q8_0
        assert tensor.tensor_type == expected_type, tensor.name
        restored = dequantized(tensor, original.shape, config)
        if quant in ("f32", "f16") or original.ndim == 1:
            np.testing.assert_allclose(restored, original, rtol=0, atol=bound if original.ndim == 2 else 0, err_msg=tensor.name)
        else:
            errors[tensor.name] = np.linalg.norm(restored - original) / np.linalg.norm(original)
    if errors:
        worst = max(errors.values())
        logging.getLogger(__name__).info("%s: worst relative error %.4f", quant, worst)
        assert worst < bound
        assert worst > bound / 20  # really quantized, not stored at full precision


@pytest.mark.parametrize("variant", ["tiny", "tiny_gqa"])
def test_transformers_reloads_the_f16_export_and_decodes_the_same(variant, request, tmp_path):
    student = request.getfixturevalue(variant)
    model, tokenizer = student["model"], student["tokenizer"]
    export_gguf(student["dir"], tmp_path / "student.gguf", "f16")

    reloaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path, gguf_file="student.gguf")
    ids = tokenizer(SAMPLE, return_tensors="pt")["input_ids"]
    assert reloaded_tokenizer(SAMPLE)["input_ids"] == ids[0].tolist()
    assert reloaded_tokenizer.decode(ids[0]) == SAMPLE
    assert reloaded_tokenizer.chat_template == tokenizer.chat_template

    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="student.gguf", dtype=torch.float32).eval()
    assert reloaded.config.num_key_value_heads == model.config.num_key_value_heads
    with torch.no_grad():
        # f16 weights move the logits by about 0.02 here; a wrong q/k order moves them by about 8.
        torch.testing.assert_close(reloaded(ids).logits, model(ids).logits, atol=0.05, rtol=0)
        settings = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
        expected = model.generate(ids, **settings)[0, ids.shape[1] :].tolist()
        assert reloaded.generate(ids, **settings)[0, ids.shape[1] :].tolist() == expected
    assert len(expected) == 8 and len(set(expected)) > 3  # a varied continuation, so agreement means something


def test_llama_cpp_runs_the_f16_export_and_decodes_the_same(tiny, tmp_path):
    llama_cpp = pytest.importorskip("llama_cpp")
    path = export_gguf(tiny["dir"], tmp_path / "tiny-f16.gguf", "f16")
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, verbose=False)
    ids = tiny["tokenizer"](SAMPLE)["input_ids"]
    assert llm.tokenize(SAMPLE.encode(), add_bos=False, special=True) == ids
    with torch.no_grad():
        expected = tiny["model"].generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False)[0, len(ids) :].tolist()
    got = []
    for token in llm.generate(ids, temp=0.0, top_k=1):
        if token == llm.token_eos() or len(got) == 8:
            break
        got.append(token)
    assert got == expected[: len(got)] and len(got) == min(8, len(expected))


def test_rows_that_do_not_fit_quant_blocks_stay_f16(tiny, tmp_path, caplog):
    # hidden 48 is not a multiple of 32; ffn_down's rows (4 x 48 = 192) are.
    model = build_model(tiny["tokenizer"], hidden=48, layers=1, heads=2, seed=0)
    source = save(model, tiny["tokenizer"], tmp_path / "odd")
    with caplog.at_level(logging.INFO, logger="student.gguf_export"):
        path = export_gguf(source, tmp_path / "odd-q8_0.gguf", "q8_0")
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(path).tensors}
    assert types["blk.0.ffn_down.weight"] == "Q8_0"
    assert types["blk.0.attn_q.weight"] == types["token_embd.weight"] == "F16"
    assert types["blk.0.attn_norm.weight"] == "F32"
    assert "keeping blk.0.attn_q.weight as F16" in caplog.text


def test_q4_0_keeps_only_the_logits_matrix_at_8_bits_when_embeddings_are_untied(tiny, tmp_path):
    config = copy.deepcopy(tiny["model"].config)
    config.tie_word_embeddings = False
    source = save(spread_weights(LlamaForCausalLM(config), seed=2), tiny["tokenizer"], tmp_path / "untied")
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(export_gguf(source, tmp_path / "untied.gguf", "q4_0")).tensors}
    assert types["output.weight"] == "Q8_0"
    assert types["token_embd.weight"] == types["blk.0.ffn_up.weight"] == "Q4_0"


def test_q4_0_keeps_queries_keys_values_and_ffn_down_at_8_bits_in_every_layer():
    config = LlamaConfig(num_hidden_layers=30, tie_word_embeddings=True)  # SmolLM2-135M's depth
    for t in ("attn_q", "attn_k", "attn_v", "ffn_down"):
        assert {tensor_quant(f"blk.{i}.{t}.weight", "q4_0", config) for i in range(30)} == {"q8_0"}
    others = ("attn_output", "ffn_up", "ffn_gate")
    assert {tensor_quant(f"blk.{i}.{t}.weight", "q4_0", config) for i in range(30) for t in others} == {"q4_0"}
    assert tensor_quant("token_embd.weight", "q4_0", config) == "q8_0"
    assert tensor_quant("blk.0.attn_v.weight", "q8_0", config) == "q8_0"


def test_non_llama_models_are_refused(tmp_path):
    GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64, n_positions=64)).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ValueError, match="GPT2LMHeadModel.*only LlamaForCausalLM is supported"):
        export_gguf(tmp_path / "gpt2", tmp_path / "gpt2.gguf")
    assert not (tmp_path / "gpt2.gguf").exists()


def test_unknown_quant_is_refused(tiny, tmp_path):
    with pytest.raises(ValueError, match="q4_0"):
        export_gguf(tiny["dir"], tmp_path / "x.gguf", "q3_k")


def test_a_failed_export_leaves_the_previous_file_and_no_temp(tiny, tmp_path):
    # A tokenizer larger than the embedding is only found once the export is under way.
    tokenizer = copy.deepcopy(tiny["tokenizer"])
    tokenizer.add_tokens(["<extra>"])
    source = save(tiny["model"], tokenizer, tmp_path / "src")
    out = tmp_path / "out" / "student.gguf"
    out.parent.mkdir()
    out.write_bytes(b"previous export")
    with pytest.raises(ValueError, match="tokens but the model embeds only"):
        export_gguf(source, out)
    assert out.read_bytes() == b"previous export" and [p.name for p in out.parent.iterdir()] == ["student.gguf"]
