"""Activation-aware scaling before a 4-bit export (the idea of AWQ, Lin et al. 2023), for bias-free Llamas.

Q4_0 gives each block of 32 weights one scale, set by the block's largest weight, so a few large weights round
the rest of their block to zero. Scaling input channel j of a matrix by s_j and dividing what feeds that channel
by s_j leaves the full-precision model's outputs unchanged, but moves precision towards the channels whose
activations are large. Each group of matrices that read one input gets s = mean|x|^alpha, with alpha chosen on
calibration text to minimise the group's 4-bit output error:
- attn_norm -> q, k, v and ffn_norm -> gate, up: the RMSNorm weight takes 1/s;
- up -> down: up's rows take 1/s (a row scaled as a whole quantizes to the same error, scaled);
- v -> o: v's rows take 1/s, one s per kv channel shared by the query heads that read it (grouped-query attention).
On SmolLM2-135M's RL student this halved the KL divergence of the Q4_0 file from full precision on the held-out
replies, at no cost in size (README, "Quantized artifacts").

    alphas = smooth(model, [tokenizer(text, return_tensors="pt").input_ids for text in texts], is_4_bit)
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import torch
from torch import nn

ALPHAS = [i / 10 for i in range(11)]
TOKENS_PER_SEQUENCE = 16  # tokens per calibration sequence kept for the error search; the means use every token
O_PROJ = "self_attn.o_proj"
GROUPS = [  # (the matrices that read one input, the parameter that produces that input)
    (("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"), "input_layernorm.weight"),
    (("mlp.gate_proj", "mlp.up_proj"), "post_attention_layernorm.weight"),
    (("mlp.down_proj",), "mlp.up_proj.weight"),
    ((O_PROJ,), "self_attn.v_proj.weight"),
]


def q4_0(weight: torch.Tensor) -> torch.Tensor:
    """`weight` rounded as gguf-py writes Q4_0 and read back: blocks of 32 along rows, scale = signed max / -8."""
    blocks = weight.reshape(-1, 32)
    peak = blocks.gather(1, blocks.abs().argmax(1, keepdim=True))
    scale = peak / -8
    inverse = torch.where(scale == 0, torch.zeros_like(scale), 1 / scale)
    codes = torch.clamp(torch.floor(blocks * inverse + 8.5), 0, 15) - 8
    return (codes * scale.half().float()).reshape(weight.shape)


@torch.no_grad()
def smooth(model: nn.Module, calibration: list[torch.Tensor], is_4_bit: Callable[[int, str], bool]) -> dict[str, float]:
    """Rescale `model` in place for a 4-bit export; returns the mean alpha chosen per group (for the log).

    `calibration` holds token-id tensors of shape (1, length); `is_4_bit(layer, module)` says whether a matrix, by its
    module path such as "self_attn.q_proj", will be written at 4 bits (the others' rounding error is left out); its
    rows must then be a multiple of Q4_0's block of 32.
    """
    config = model.config
    group = config.num_attention_heads // config.num_key_value_heads
    # At 8 bits the rounding error is too small to trade: only groups with a 4-bit reader are rescaled.
    todo = [
        (i, readers, source)
        for i in range(config.num_hidden_layers)
        for readers, source in GROUPS
        if any(is_4_bit(i, r) for r in readers)
    ]
    stats = collect(model, calibration, [f"{i}.{readers[0]}" for i, readers, _ in todo])
    chosen: dict[str, list[float]] = {readers[0]: [] for readers, _ in GROUPS}
    for i, readers, source in todo:
        layer = model.model.layers[i]
        mean, sample = stats[f"{i}.{readers[0]}"]
        repeat = group if readers[0] == O_PROJ else 1
        if readers[0] == O_PROJ:
            # o's input channel h*head_dim + d is v's row (h // group)*head_dim + d: one scale per kv channel.
            mean = mean.view(config.num_key_value_heads, group, -1).mean(1)
        matrices = {r: layer.get_submodule(r) for r in readers}
        alpha, s = search(mean, sample, matrices, lambda m, i=i: is_4_bit(i, m), repeat)
        fold(s, list(matrices.values()), layer.get_parameter(source), repeat)
        chosen[readers[0]].append(alpha)
    return {name: sum(alphas) / len(alphas) for name, alphas in chosen.items() if alphas}


def collect(model: nn.Module, calibration: list[torch.Tensor], paths: list[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """For each module path ("3.mlp.down_proj"): the mean |input| per channel over every token, and a sample of input
    rows, seeded per path so that which paths are hooked does not change any one's sample."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    samples: dict[str, list[torch.Tensor]] = {}
    generators = {path: torch.Generator().manual_seed(zlib.crc32(path.encode())) for path in paths}

    def hook(key):
        def record(module, inputs, output):
            x = inputs[0].reshape(-1, inputs[0].shape[-1]).float()
            sums[key] = sums.get(key, 0) + x.abs().sum(0)
            counts[key] = counts.get(key, 0) + len(x)
            pick = torch.randperm(len(x), generator=generators[key])[:TOKENS_PER_SEQUENCE]
            samples.setdefault(key, []).append(x[pick])

        return record

    handles = [model.get_submodule(f"model.layers.{path}").register_forward_hook(hook(path)) for path in paths]
    try:
        model.eval()
        for ids in calibration:
            model(ids.to(model.device))
    finally:
        for handle in handles:
            handle.remove()
    return {key: (sums[key] / counts[key], torch.cat(samples[key])) for key in sums}


def search(
    mean: torch.Tensor, sample: torch.Tensor, matrices: dict[str, nn.Linear], is_4_bit: Callable[[str], bool], repeat: int
) -> tuple[float, torch.Tensor]:
    """The alpha, and its scales (the shape of `mean`), whose 4-bit outputs on `sample` come closest to exact.

    `mean` is per input channel, or (kv_heads, head_dim) where each scale serves `repeat` heads."""
    base = mean.clamp(min=1e-5)
    exact = {name: sample @ m.weight.T for name, m in matrices.items()}
    best = (float("inf"), 0.0, torch.ones_like(base))
    for alpha in ALPHAS:
        s = base**alpha
        s = s / (s.max() * s.min()).sqrt()  # centred on 1, so neither side of the fold grows without need
        per_channel = expand(s, repeat)
        error = 0.0
        for name, m in matrices.items():
            weight = m.weight * per_channel
            if is_4_bit(name):
                weight = q4_0(weight)
            error += ((sample / per_channel) @ weight.T - exact[name]).pow(2).sum().item()
        if error < best[0]:
            best = (error, alpha, s)
    return best[1], best[2]


def expand(s: torch.Tensor, repeat: int) -> torch.Tensor:
    """Per-kv-channel scales (kv_heads, head_dim) as per input channel of o: each repeated for its group's heads."""
    if s.dim() == 1:
        return s
    kv_heads, head_dim = s.shape
    return s[:, None, :].expand(kv_heads, repeat, head_dim).reshape(-1)


def fold(s: torch.Tensor, into: list[nn.Linear], source: torch.Tensor, repeat: int) -> None:
    """Scale the input channels of `into` by s and what produces them (`source`: a norm weight or rows) by 1/s."""
    for m in into:
        m.weight.mul_(expand(s, repeat))
    flat = s.reshape(-1)
    source.div_(flat if source.dim() == 1 else flat[:, None])
