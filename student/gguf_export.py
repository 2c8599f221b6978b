"""GGUF export of a Llama-family student, for llama.cpp and everything else that reads GGUF.

    export_gguf("runs/x/student", "runs/x/student-q8_0.gguf", quant="q8_0")
    export_gguf("runs/x/student", "runs/x/student-q4_0.gguf", quant="q4_0", calibration=texts)  # smoothed first

Our own compact converter built on the `gguf` package, not llama.cpp's convert script: the students
are plain `LlamaForCausalLM`s with byte-level BPE tokenizers (the tiny one and SmolLM2), so one
architecture and one tokenizer family are all it needs, and anything else is refused up front.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import gguf
import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from student.smoothing import smooth

log = logging.getLogger(__name__)

QUANT_TYPES = ("f16", "q8_0", "q4_0")
Q = gguf.GGMLQuantizationType
# What the 2-D weight matrices become; norms and other 1-D tensors stay F32 whatever is asked.
MATRIX_TYPE = {"f32": Q.F32, "f16": Q.F16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0}
# Under q4_0 the matrices that lose the most per bit stay Q8_0, the ones llama.cpp's Q4_K_M recipe gives more bits: the
# one that makes the logits (token_embd when tied), attn_v and ffn_down. Q4_K_M keeps half of the latter at Q6_K (a
# type gguf-py cannot write); on SmolLM2 keeping 14 of 30 layers' at Q8_0 lost every word problem, keeping all lost
# 1 of 14. The queries and keys too: the student copies words and numbers from the question by attention, and with
# them at 4 bits the default student miscopied 3 of its 39 right answers, at 8 bits 1 (+6.3 MiB; README,
# "Quantized artifacts").
KEEP_8_BIT = {"q4_0": "q8_0"}
SENSITIVE = ("attn_q", "attn_k", "attn_v", "ffn_down")
FILE_TYPE = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
}

TOP_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
LAYER_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def export_gguf(model_dir: str | Path, out_file: str | Path, quant: str = "f16", calibration: Sequence[str] = ()) -> Path:
    """Write the HF model in `model_dir` as one GGUF file at `out_file`; returns that path.

    For a 4-bit file, `calibration` texts (the student's own chat format) first rescale the model's channels
    (`student.smoothing`): the same model in full precision, less rounding error at 4 bits."""
    if quant not in MATRIX_TYPE:
        raise ValueError(f"unknown GGUF quantization {quant!r}; expected one of {', '.join([*QUANT_TYPES, 'f32'])}")
    model_dir, out_file = Path(model_dir), Path(out_file)
    # Refuse before loading any weights: the config alone says whether we can convert it.
    config = AutoConfig.from_pretrained(model_dir)
    check_supported(config)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if calibration and is_calibrated(quant):
        ids = [tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids for text in calibration]

        def is_4_bit(i: int, path: str) -> bool:
            shape = model.model.layers[i].get_submodule(path).weight.shape
            return written_type(shape, tensor_quant(f"blk.{i}.{LAYER_NAMES[path]}.weight", quant, config)) == MATRIX_TYPE[quant]

        alphas = smooth(model, ids, is_4_bit)
        log.info("smoothed for %s on %d texts; mean alpha %s", quant, len(ids), {k: round(v, 2) for k, v in alphas.items()})

    out_file.parent.mkdir(parents=True, exist_ok=True)
    # Beside the target, so os.replace is an atomic rename on the same filesystem; hidden and per-process.
    tmp = out_file.with_name(f".{out_file.name}.{os.getpid()}.tmp")
    try:
        writer = gguf.GGUFWriter(tmp, arch="llama")
        write_hparams(writer, config, quant, model_dir.resolve().name)
        write_tokenizer(writer, tokenizer, config.vocab_size)
        for name, data in gguf_tensors(model.state_dict(), config):
            add_tensor(writer, name, data, tensor_quant(name, quant, config))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out_file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("wrote %s (%s, %.1f MB)", out_file, quant, out_file.stat().st_size / 1e6)
    return out_file


def is_calibrated(quant: str) -> bool:
    """Whether `export_gguf` rescales channels on calibration texts for `quant`: only files with 4-bit matrices."""
    return quant in KEEP_8_BIT


def tensor_quant(name: str, quant: str, config) -> str:
    """The quantization of one tensor in a file of `quant`: `quant`, or Q8_0 for the sensitive 4-bit matrices."""
    if quant not in KEEP_8_BIT:
        return quant
    logits = name == ("token_embd.weight" if config.tie_word_embeddings else "output.weight")
    parts = name.split(".")  # blk.N.<tensor>.weight
    sensitive = parts[0] == "blk" and parts[2] in SENSITIVE
    return KEEP_8_BIT[quant] if logits or sensitive else quant


def check_supported(config) -> None:
    arch = (getattr(config, "architectures", None) or [config.model_type])[0]
    if config.model_type != "llama" or arch != "LlamaForCausalLM":
        raise ValueError(f"cannot export {arch} (model_type {config.model_type!r}) to GGUF: only LlamaForCausalLM is supported")
    # Each of these needs extra tensors or keys in llama.cpp that this exporter does not write.
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise ValueError("cannot export a Llama with attention or MLP biases to GGUF: only bias-free Llamas are supported")
    rope_type = rope_parameters(config).get("rope_type", "default")
    if rope_type != "default":
        raise ValueError(f"cannot export RoPE scaling {rope_type!r} to GGUF: only the default RoPE is supported")


def rope_parameters(config) -> dict:
    # transformers 5 keeps theta and scaling in `rope_parameters`; older configs had `rope_theta`/`rope_scaling`.
    params = dict(getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {})
    params.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    return params


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def write_hparams(writer: gguf.GGUFWriter, config, quant: str, name: str) -> None:
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(float(rope_parameters(config)["rope_theta"]))
    writer.add_rope_dimension_count(head_dim(config))
    if head_dim(config) != config.hidden_size // config.num_attention_heads:
        writer.add_key_length(head_dim(config))
        writer.add_value_length(head_dim(config))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(FILE_TYPE[quant])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def write_tokenizer(writer: gguf.GGUFWriter, tokenizer, vocab_size: int) -> None:
    """The byte-level BPE vocabulary under llama.cpp's keys: the `gpt2` tokenizer model."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    if spec["model"]["type"] != "BPE" or "ByteLevel" not in json.dumps(spec["pre_tokenizer"]):
        raise ValueError("cannot export this tokenizer to GGUF: only byte-level BPE tokenizers are supported")
    if len(tokenizer) > vocab_size:
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model embeds only {vocab_size}")

    by_id = {i: token for token, i in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:  # embedding rows past the tokenizer, padded for alignment: llama.cpp needs one token per row
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        tokens.append(by_id[i])
        if i not in added:
            types.append(gguf.TokenType.NORMAL)
        else:
            # Control tokens are only matched when the caller asks for special tokens; user-defined ones
            # (like <think>) are always matched whole and decode to their literal text.
            types.append(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_tokenizer_name(spec["pre_tokenizer"]))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for token_id, add in [
        (tokenizer.bos_token_id, writer.add_bos_token_id),
        (tokenizer.eos_token_id, writer.add_eos_token_id),
        (tokenizer.unk_token_id, writer.add_unk_token_id),
        (tokenizer.pad_token_id, writer.add_pad_token_id),
    ]:
        if token_id is not None:
            add(token_id)
    # llama.cpp otherwise guesses from the pre-tokenizer; say exactly what the HF tokenizer does.
    with_special = tokenizer("a")["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    writer.add_add_bos_token(len(with_special) > len(plain) and with_special[0] == tokenizer.bos_token_id)
    writer.add_add_eos_token(len(with_special) > len(plain) and with_special[-1] == tokenizer.eos_token_id)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def pre_tokenizer_name(pre: dict | None) -> str:
    """llama.cpp's name for the regex that splits text before BPE; it picks the split by this name alone."""
    steps = [] if pre is None else pre.get("pretokenizers", [pre])
    shape = [(s["type"], s.get("individual_digits", s.get("use_regex"))) for s in steps]
    if shape == [("ByteLevel", True)]:
        return "gpt-2"  # tokenizers' ByteLevel regex is GPT-2's (the tiny student)
    if shape == [("Digits", True), ("ByteLevel", True)]:
        return "smollm"  # single digits, then GPT-2's regex (SmolLM/SmolLM2)
    log.warning("no llama.cpp pre-tokenizer matches %s; writing 'default', so llama.cpp may split text differently", shape)
    return "default"


def permute_qk(weight: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder each head's rows from HF's rotate-half RoPE layout to llama.cpp's interleaved pairs."""
    return weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def gguf_tensors(state_dict: dict[str, torch.Tensor], config):
    """(GGUF name, float32 array) for every weight, in HF order."""
    for hf_name, tensor in state_dict.items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # llama.cpp reuses token_embd when there is no `output` tensor
        data = tensor.detach().to(torch.float32).numpy()
        if hf_name in TOP_NAMES:
            yield TOP_NAMES[hf_name], data
            continue
        parts = hf_name.split(".")  # model.layers.N.<module path>.weight
        module = ".".join(parts[3:-1])
        if parts[:2] != ["model", "layers"] or module not in LAYER_NAMES:
            raise ValueError(f"cannot map tensor {hf_name!r} to a GGUF llama tensor")
        if module == "self_attn.q_proj":
            data = permute_qk(data, config.num_attention_heads)
        elif module == "self_attn.k_proj":
            data = permute_qk(data, config.num_key_value_heads)
        yield f"blk.{parts[2]}.{LAYER_NAMES[module]}.weight", data


def written_type(shape: Sequence[int], quant: str) -> gguf.GGMLQuantizationType:
    """The type a tensor of `shape` is written as in a `quant` matrix's place: 1-D tensors stay F32, and a
    quantized matrix whose rows are not a multiple of the type's block stays F16."""
    qtype = MATRIX_TYPE[quant] if len(shape) == 2 else Q.F32
    if qtype in (Q.Q8_0, Q.Q4_0) and shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0]:
        return Q.F16
    return qtype


def add_tensor(writer: gguf.GGUFWriter, name: str, data: np.ndarray, quant: str) -> None:
    qtype = written_type(data.shape, quant)
    if data.ndim == 2 and qtype != MATRIX_TYPE[quant]:
        log.info("keeping %s as F16: its rows of %d are not a multiple of the %s block", name, data.shape[-1], quant)
    if qtype == Q.F32:
        writer.add_tensor(name, data.astype(np.float32))
    elif qtype == Q.F16:
        writer.add_tensor(name, data.astype(np.float16))
    else:
        writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
