"""Activation-aware scaling before the 4-bit export, on real tiny Llamas (grouped-query attention, outlier channels)."""

import copy

import gguf
import numpy as np
import pytest
import torch
from transformers import LlamaForCausalLM

from student.gguf_export import export_gguf
from student.smoothing import q4_0, smooth
from student.tiny import build_model, build_tokenizer
from tests.student.test_gguf_export import SENTENCES, dequantized, hf_name, save

TOKENIZER = build_tokenizer(SENTENCES, 512)


def outlier_llama(seed: int) -> LlamaForCausalLM:
    """SmolLM2's shape in small (two query heads per key/value head), with a few input channels 30x louder than
    the rest, as trained LLMs have: where Q4_0 loses the most."""
    config = build_model(TOKENIZER, hidden=64, layers=2, heads=4, seed=seed).config
    config.num_key_value_heads = 2
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 2:
                parameter.normal_(0, 0.2)
        for layer in model.model.layers:
            layer.input_layernorm.weight[[3, 17]] = 30.0
            layer.post_attention_layernorm.weight[[5, 40]] = 30.0
            layer.mlp.up_proj.weight[[7, 99]] *= 30.0
    return model


def four_bit(model: LlamaForCausalLM) -> LlamaForCausalLM:
    """A copy with every layer matrix rounded as Q4_0."""
    rounded = copy.deepcopy(model)
    with torch.no_grad():
        for name, parameter in rounded.named_parameters():
            if parameter.ndim == 2 and ".layers." in name:
                parameter.copy_(q4_0(parameter))
    return rounded


def read(path, like: LlamaForCausalLM) -> LlamaForCausalLM:
    """The model a GGUF file holds, dequantized into a copy of `like` (q and k rows back in transformers' order)."""
    model = copy.deepcopy(like)
    state = model.state_dict()
    with torch.no_grad():
        for tensor in gguf.GGUFReader(path).tensors:
            target = state[hf_name(tensor.name)]
            target.copy_(torch.from_numpy(np.ascontiguousarray(dequantized(tensor, target.shape, model.config))))
    return model


def calibration(seed: int, count: int = 8) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, len(TOKENIZER), (1, 24), generator=generator) for _ in range(count)]


def error(model, reference, ids: list[torch.Tensor]) -> float:
    with torch.no_grad():
        return sum((model(i).logits - reference(i).logits).pow(2).mean().item() for i in ids)


def test_q4_0_rounds_as_gguf_writes_and_reads_it():
    weight = torch.randn(48, 96) * torch.logspace(-2, 1, 96)
    weight[0, :32] = 0.0  # an all-zero block
    expected = gguf.quants.dequantize(
        gguf.quants.quantize(weight.numpy(), gguf.GGMLQuantizationType.Q4_0), gguf.GGMLQuantizationType.Q4_0
    )
    np.testing.assert_array_equal(q4_0(weight).numpy(), expected.reshape(weight.shape))


def test_smoothing_keeps_full_precision_outputs_and_cuts_the_4_bit_error():
    model = outlier_llama(seed=0)
    held_out = calibration(seed=1)
    before = error(four_bit(model), model, held_out)

    smoothed = copy.deepcopy(model)
    alphas = smooth(smoothed, calibration(seed=0), lambda layer, path: True)

    assert set(alphas) == {"self_attn.q_proj", "mlp.gate_proj", "mlp.down_proj", "self_attn.o_proj"}
    assert alphas["self_attn.q_proj"] > 0 and alphas["mlp.gate_proj"] > 0  # the loud channels were rescaled
    assert error(smoothed, model, held_out) < 1e-8  # the same model in full precision
    after = error(four_bit(smoothed), model, held_out)
    assert after < 0.75 * before, (before, after)


def test_matrices_kept_at_8_bits_are_left_alone_and_the_rest_smoothed_as_before():
    model = outlier_llama(seed=2)
    smoothed, every = copy.deepcopy(model), copy.deepcopy(model)
    alphas = smooth(smoothed, calibration(seed=0), lambda layer, path: path != "mlp.down_proj")
    smooth(every, calibration(seed=0), lambda layer, path: True)
    assert "mlp.down_proj" not in alphas
    for before, after, all_4_bit in zip(model.model.layers, smoothed.model.layers, every.model.layers, strict=True):
        assert torch.equal(before.mlp.down_proj.weight, after.mlp.down_proj.weight)
        for path in ("self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj"):  # groups that do not feed down
            assert torch.equal(after.get_submodule(path).weight, all_4_bit.get_submodule(path).weight), path


def test_a_calibrated_q4_0_file_reads_back_closer_to_the_model(tmp_path):
    model = outlier_llama(seed=3)
    source = save(model, TOKENIZER, tmp_path / "model")
    texts = SENTENCES[:16]
    plain = export_gguf(source, tmp_path / "plain.gguf", "q4_0")
    calibrated = export_gguf(source, tmp_path / "calibrated.gguf", "q4_0", calibration=texts)

    def types(path):
        return {t.name: t.tensor_type.name for t in gguf.GGUFReader(path).tensors}

    assert types(plain) == types(calibrated)  # the same file layout, the same size
    held_out = [TOKENIZER(text, return_tensors="pt").input_ids for text in SENTENCES[16:]]

    assert error(read(calibrated, model), model, held_out) < error(read(plain, model), model, held_out)


def test_matrices_whose_rows_do_not_fit_q4_0_blocks_are_not_smoothed(tmp_path):
    # hidden 48: every 4-bit matrix reads rows of 48 and is written F16; only ffn_down (192) fits, and it stays Q8_0.
    source = save(build_model(TOKENIZER, hidden=48, layers=1, heads=2, seed=0), TOKENIZER, tmp_path / "odd")
    plain = export_gguf(source, tmp_path / "plain.gguf", "q4_0")
    calibrated = export_gguf(source, tmp_path / "calibrated.gguf", "q4_0", calibration=SENTENCES[:4])
    assert plain.read_bytes() == calibrated.read_bytes()


@pytest.mark.parametrize("quant", ["f16", "q8_0"])
def test_calibration_leaves_8_and_16_bit_files_as_they_were(tmp_path, quant):
    source = save(outlier_llama(seed=4), TOKENIZER, tmp_path / "model")
    plain = export_gguf(source, tmp_path / "plain.gguf", quant)
    calibrated = export_gguf(source, tmp_path / "calibrated.gguf", quant, calibration=SENTENCES[:4])
    assert plain.read_bytes() == calibrated.read_bytes()
