"""Typed configuration: one dataclass per stage, composed into `PipelineConfig`.

Presets are YAML files in `pipelines/presets/`; `--set section.key=value` overrides any field. An
unknown key is an error that names it and lists the valid ones. These dataclasses are the single
source of truth for defaults: presets only state what they change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distill.filters import FilterConfig

PRESETS_DIR = Path(__file__).parent / "presets"
DEFAULT_PRESET = "smol"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says which key and why."""


@dataclass
class TasksConfig:
    families: list[str] = field(default_factory=lambda: ["letters", "arithmetic"])
    train_per_family: int = 200
    eval_per_family: int = 50
    eval_share: float = 0.2  # share of split keys (words, operand pairs) held out for eval


@dataclass
class SourceConfig:
    """Extra problems from a file or a Hub dataset, mapped by column; empty `path`: built-in families only."""

    path: str = ""  # .jsonl / .json / .parquet, or a Hugging Face dataset name
    split: str = "train"  # for Hub datasets; a local file is one split
    question: str = "question"
    answer: str = "answer"  # "" for code problems graded by their tests alone
    answer_format: str = "plain"  # plain | gsm8k (number after ####) | boxed (last \boxed{} of a solution)
    family: str = "custom"
    verifier: str = "math"  # math | numeric | exact | choice | code
    tests: str = ""  # column of code tests
    id_column: str = ""
    limit: int = 0  # 0: every row


@dataclass
class TeacherConfig:
    backend: str = "procedural"
    samples_per_problem: int = 1
    slip_rate: float = 0.15  # share of traces that slip, notice and correct themselves
    shard_size: int = 256  # traces per durable shard: a crash loses at most this many
    # Model teachers (transformers | vllm | openai); the procedural backend ignores these.
    model: str = ""  # a Hub id or local dir (transformers, vllm), or the served model name (openai)
    temperature: float = 0.6  # DeepSeek-R1's recommended sampling
    top_p: float = 0.95
    max_tokens: int = 4096  # new tokens per sample, reasoning and answer together
    thinking_budget: int = 0  # transformers: reasoning tokens before </think> is forced; 0: only max_tokens
    dtype: str = "auto"  # auto: bf16 on GPUs that support it, fp32 on CPU
    batch_size: int = 8  # prompts per generate call (transformers) or per engine call (vllm)
    tensor_parallel_size: int = 1  # vllm: GPUs one model is split across
    base_url: str = ""  # openai: e.g. http://127.0.0.1:8000/v1
    api_key_env: str = "OPENAI_API_KEY"  # openai: the environment variable holding the key, never the key itself
    concurrency: int = 16  # openai: requests in flight at once
    timeout_s: float = 600.0  # openai: per request; a slower request is retried, then kept as a failed trace
    max_retries: int = 4  # openai: on 429, 5xx, timeouts and connection errors, with exponential backoff
    backoff_s: float = 1.0  # openai: first retry delay, doubled each retry (with jitter)


@dataclass
class StudentConfig:
    model: str = "smollm2-135m-instruct"  # "tiny", a named packaged model, a local dir or a Hub id
    instruction: str = (
        "Think step by step inside <think></think>, then give the final answer in \\boxed{}. "
        "To compute, write Python as <python>code</python>; its output appears in <output></output>."
    )
    dtype: str = "auto"  # auto: bf16 on GPUs that support it, fp32 on CPU
    tiny_hidden_size: int = 128
    tiny_layers: int = 4
    tiny_heads: int = 4
    tiny_vocab_size: int = 1024


@dataclass
class LoraConfig:
    """Low-rank adapters (PEFT LoRA) in place of full fine-tuning; rank 0 trains every weight.

    The trained adapter is merged into the base weights when its stage ends, so every later stage, the
    quantizers and the GGUF export see a plain model."""

    rank: int = 0
    alpha: float = 0.0  # the adapter's scale is alpha / rank; 0: twice the rank
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])  # every linear layer but the LM head


@dataclass
class SFTConfig:
    max_steps: int = 100
    batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 5e-5
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    max_length: int = 512
    logging_steps: int = 5
    save_steps: int = 25  # checkpoint interval; a killed run resumes from the last one
    gradient_checkpointing: bool = False  # trades compute for memory: worth it only for big models
    # Padding-free packing (TRL's BFD packing): takes effect only where FlashAttention-2 is the attention
    # kernel, which keeps packed examples apart; with SDPA (CPU, GPUs without flash-attn) it stays off.
    packing: bool = False
    # Without packing, batches of similar lengths waste less compute on padding (1.5x fewer tokens on the smol
    # traces): TRL's LengthGroupedSampler, shuffled in megabatches.
    group_by_length: bool = True
    use_liger_kernel: bool = False  # Liger's fused Triton kernels (GPU; `pip install liger-kernel`)
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class RLConfig:
    max_steps: int = 20
    problems: int = 64  # training problems drawn for RL
    # Families GRPO draws from; []: every family. A family the SFT student always solves gives groups whose
    # rewards are all equal, so no advantage and no gradient: leaving it out spends the steps where they teach.
    families: list[str] = field(default_factory=list)
    learning_rate: float = 1e-6
    num_generations: int = 4
    batch_size: int = 8  # completions per step; a multiple of num_generations
    max_completion_length: int = 256
    temperature: float = 1.0
    beta: float = 0.0  # KL coefficient; 0 drops the reference model, as DAPO and open-r1 do
    rewards: list[str] = field(default_factory=lambda: ["correctness", "format"])
    reward_weights: list[float] = field(default_factory=lambda: [1.0, 0.2])
    logging_steps: int = 2
    save_steps: int = 10
    gradient_checkpointing: bool = False
    lora: LoraConfig = field(default_factory=LoraConfig)
    # GRPO generation with vLLM (`pip install -e ".[vllm]"`); otherwise transformers' generate.
    use_vllm: bool = False
    vllm_mode: str = "colocate"  # colocate: vLLM shares the training GPUs; server: a `trl vllm-serve` process
    vllm_server_base_url: str = ""  # server mode, e.g. http://10.0.0.5:8000 (default: localhost:8000)
    vllm_gpu_memory_utilization: float = 0.3  # colocate mode: the share of GPU memory vLLM may take


@dataclass
class QuantizeConfig:
    methods: list[str] = field(default_factory=lambda: ["nf4", "int8"])  # bitsandbytes
    gguf: list[str] = field(default_factory=lambda: ["f16", "q8_0", "q4_0"])  # GGUF files for llama.cpp; [] for none
    calibration: int = 64  # kept training traces that rescale channels before the q4_0 export (student/smoothing.py); 0: none


@dataclass
class EvalConfig:
    # Every artifact beside the full-precision student: quantization must not silently cost accuracy.
    variants: list[str] = field(
        default_factory=lambda: ["base", "sft", "rl", "nf4", "int8", "gguf-f16", "gguf-q8_0", "gguf-q4_0"]
    )
    max_new_tokens: int = 384
    batch_size: int = 16
    # The thinking-time sweep (budget forcing): every variant here x every budget, n = max(samples) samples a problem.
    scaling_variants: list[str] = field(default_factory=lambda: ["base", "sft", "rl", "nf4", "int8"])  # []: no sweep
    budgets: list[int] = field(default_factory=lambda: [16, 64, 256, 1024])  # thinking tokens at most
    samples: list[int] = field(default_factory=lambda: [1, 4, 8])  # the k of pass@k, maj@k, best-of-k
    temperature: float = 0.7
    scaling_per_family: int = 10  # problems per family from the held-out split; 0: all
    answer_tokens: int = 32  # the answer after the think block is closed
    extend: int = 0  # s1's "Wait": times an early end of thinking is replaced, within the budget


@dataclass
class BenchConfig:
    variants: list[str] = field(default_factory=lambda: ["rl", "nf4", "int8"])
    prompts: int = 4
    repeats: int = 2
    warmup: int = 1
    max_new_tokens: int = 64
    concurrency: list[int] = field(default_factory=lambda: [1, 4])  # requests generated together (one batch)
    percentiles: list[float] = field(default_factory=lambda: [50, 90, 95, 99])
    runtime: str = "auto"  # auto (llama.cpp for GGUF variants when installed) | transformers | llama_cpp | vllm


@dataclass
class PipelineConfig:
    name: str = "distill"
    seed: int = 0
    tasks: TasksConfig = field(default_factory=TasksConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    curate: FilterConfig = field(default_factory=FilterConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """`{"sft.learning_rate": 5e-05, ...}`: the form MLflow params take."""
        return _flatten(self.to_dict())

    def section_hash(self, *sections: str) -> str:
        """A digest of some top-level fields, for stage caching: RL settings leave SFT's hash alone."""
        everything = self.to_dict()
        chosen = {name: everything[name] for name in sections}
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check a YAML value against a field's type hint; ints are accepted where floats are."""
    origin = typing.get_origin(hint)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (inner,) = typing.get_args(hint)
        return [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is float and not isinstance(value, bool) and isinstance(value, int | str):
        # YAML 1.1 reads "1e-4" (no dot) as a string; accept any spelling Python reads as a float.
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if hint in (int, float, str, bool) and (type(value) is not hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r} ({type(value).__name__})")
    return value


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in valid]
    if unknown:
        place = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key {place}{unknown[0]}; valid keys{' in ' + where if where else ''}: {', '.join(valid)}"
        )
    kwargs = {}
    for key, value in data.items():
        hint, name = hints[key], f"{where}.{key}" if where else key
        kwargs[key] = _build(hint, value, name) if dataclasses.is_dataclass(hint) else _coerce(value, hint, name)
    return cls(**kwargs)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def parse_override(text: str) -> dict[str, Any]:
    """`"rl.num_generations=4"` -> `{"rl": {"num_generations": 4}}`, the value read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    value = yaml.safe_load(raw) if raw else ""
    tree: dict[str, Any] = value
    for part in reversed(key.strip().split(".")):
        tree = {part: tree}
    return tree


def load_config(preset: str | Path | None = None, overrides: list[str] = (), base: dict | None = None) -> PipelineConfig:
    """Defaults, then a preset (a name or a YAML path) or a saved config `base`, then overrides."""
    data: dict[str, Any] = base or {}
    if preset is not None:
        path = Path(preset)
        if not path.suffix:
            path = PRESETS_DIR / f"{preset}.yaml"
            if not path.exists():
                raise ConfigError(f"unknown preset {preset!r}; available presets: {', '.join(preset_names())}")
        data = read_yaml(path)
    for text in overrides:
        data = _merge(data, parse_override(text))
    # Built twice so defaults are coerced like given values (an int default in a float field): a config
    # then survives its YAML round trip unchanged, and with it every stage's cache key.
    return _build(PipelineConfig, _build(PipelineConfig, data, "").to_dict(), "")


def save_config(config: PipelineConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
