"""Training throughput on one CUDA GPU: SFT and GRPO steps in bf16, per attention kernel, with and without packing.

    python benchmarks/gpu_training.py --model smollm2-135m-instruct --out gpu_training.json
    python benchmarks/gpu_training.py --model Qwen/Qwen2.5-0.5B-Instruct --peak-tflops 989 --steps 30

Variants: SFT with PyTorch SDPA (flash and memory-efficient backends only, never the math one; padded
batches carry a mask, for which SDPA takes the memory-efficient kernel), SFT with FlashAttention-2
where `flash_attn` is installed, unpadded and with padding-free BFD packing (what `sft.packing: true`
turns on), and GRPO steps (generation with transformers, or with vLLM colocated when `--vllm`).

Reported per variant: training tokens/s (real tokens, no padding, after `--warmup` steps), steps/s,
peak GPU memory, and model FLOPs utilisation, MFU = 6 * parameters * tokens/s / peak FLOP/s. The 6N
rule leaves out attention FLOPs (small at these lengths), so MFU is a slight underestimate; for GRPO
most time is generation, so its MFU says how much of the GPU the whole RL step uses for training.
`--peak-tflops` is the GPU's dense bf16 peak: 989 for an H100 SXM (756 for PCIe, 989 for an H200).

Results go to `--out` (JSON) and to MLflow (experiment `distill-benchmarks`; `MLFLOW_TRACKING_URI`, else a
SQLite store beside `--out`). Needs a CUDA GPU: elsewhere it stops with a message.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="packaged name, local directory or Hub id")
    parser.add_argument("--steps", type=int, default=30, help="SFT steps per variant (GRPO runs a third of them)")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the timing")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--problems", type=int, default=2000, help="training examples made from the built-in tasks")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100 SXM: 989)")
    parser.add_argument("--vllm", action="store_true", help="GRPO generation with vLLM in colocate mode")
    parser.add_argument("--only", choices=["sft", "rl"], help="run only the SFT or only the GRPO variants")
    parser.add_argument("--out", type=Path, default=Path("gpu_training.json"))
    return parser.parse_args(argv)


def require_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        sys.exit("benchmarks/gpu_training.py needs a CUDA GPU (bf16, SDPA flash, FlashAttention-2); none is visible here.")
    if not torch.cuda.is_bf16_supported():
        sys.exit(f"benchmarks/gpu_training.py needs a GPU with bf16; {torch.cuda.get_device_name()} has none.")


def rows(count: int) -> list[dict]:
    """Prompt-completion chat rows from the procedural teacher, as the SFT stage makes them."""
    from distill.tasks import make_problems
    from distill.verify import verifier_of
    from student.chat import sft_row
    from teacher.backends import ProceduralTeacher

    problems = make_problems(["letters", "arithmetic"], count // 2, "train", seed=0)
    by_id = {p.id: p for p in problems}
    traces = ProceduralTeacher(seed=0, slip_rate=0.15).traces(problems, 1)
    out = []
    for trace in traces:
        problem = by_id[trace.problem_id]
        extra = {"answer": problem.answer, "verifier": verifier_of(problem), "tests": problem.tests}
        out.append(sft_row(problem.question, "", trace.text) | extra)
    return out


class Clock:
    """A trainer callback that notes the time and the token count at the end of every step."""

    def __init__(self):
        from transformers import TrainerCallback

        clock = self

        class _Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                import torch

                torch.cuda.synchronize()
                clock.times.append(time.perf_counter())

        self.times: list[float] = []
        self.callback = _Callback()


def measure(trainer, clock: Clock, warmup: int, params: int, peak_tflops: float) -> dict:
    import torch

    torch.cuda.reset_peak_memory_stats()
    trainer.train()
    tokens = [entry["num_tokens"] for entry in trainer.state.log_history if "num_tokens" in entry]
    if len(clock.times) <= warmup or len(tokens) <= warmup:
        raise SystemExit(f"--steps must exceed --warmup ({warmup}): only {len(clock.times)} steps ran")
    seconds = clock.times[-1] - clock.times[warmup - 1] if warmup else clock.times[-1] - clock.times[0]
    counted = tokens[-1] - tokens[warmup - 1] if warmup else tokens[-1] - tokens[0]
    steps = len(clock.times) - max(warmup, 1)
    tokens_per_s = counted / seconds
    return {
        "tokens_per_s": round(tokens_per_s, 1),
        "steps_per_s": round(steps / seconds, 3),
        "mfu": round(6 * params * tokens_per_s / (peak_tflops * 1e12), 4),
        "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2),
        "timed_steps": steps,
    }


def sft_variant(args, data, attention: str, packing: bool) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from student.load import load_tokenizer
    from student.sft import packing_args
    from student.sources import resolve

    path = resolve(args.model)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, attn_implementation=attention).to("cuda")
    config = SFTConfig(
        output_dir="/tmp/distill-gpu-benchmark",
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        max_length=args.max_length,
        learning_rate=1e-5,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        bf16=True,
        completion_only_loss=True,
        **packing_args(packing, attention, group_by_length=not packing),
    )
    clock = Clock()
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(data), processing_class=load_tokenizer(path))
    trainer.add_callback(clock.callback)
    params = sum(p.numel() for p in model.parameters())
    if attention == "sdpa":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
            result = measure(trainer, clock, args.warmup, params, args.peak_tflops)
    else:
        result = measure(trainer, clock, args.warmup, params, args.peak_tflops)
    del trainer, model
    torch.cuda.empty_cache()
    return {"stage": "sft", "attention": attention, "packing": packing, "parameters": params, **result}


def rl_variant(args, data, attention: str) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    from distill.rewards import REWARDS
    from student.load import load_tokenizer
    from student.sources import resolve

    path = resolve(args.model)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, attn_implementation=attention).to("cuda")
    prompts = [{k: row[k] for k in ("prompt", "answer", "verifier", "tests")} for row in data]
    steps = max(args.steps // 3, args.warmup + 2)
    config = GRPOConfig(
        output_dir="/tmp/distill-gpu-benchmark-rl",
        max_steps=steps,
        per_device_train_batch_size=args.batch_size,
        num_generations=4,
        max_completion_length=256,
        learning_rate=1e-6,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        bf16=True,
        use_vllm=args.vllm,
        **({"vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3} if args.vllm else {}),
    )
    clock = Clock()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[REWARDS["correctness"], REWARDS["format"]],
        args=config,
        train_dataset=Dataset.from_list(prompts),
        processing_class=load_tokenizer(path),
    )
    trainer.add_callback(clock.callback)
    params = sum(p.numel() for p in model.parameters())
    result = measure(trainer, clock, args.warmup, params, args.peak_tflops)
    del trainer, model
    torch.cuda.empty_cache()
    return {"stage": "rl", "attention": attention, "packing": False, "vllm": args.vllm, "parameters": params, **result}


def log_to_mlflow(report: dict, out: Path) -> None:
    import mlflow

    from pipelines.tracking import store_uri

    mlflow.set_tracking_uri(store_uri(out.parent / "mlflow.db"))
    mlflow.set_experiment("distill-benchmarks")
    with mlflow.start_run(run_name="gpu_training"):
        mlflow.log_params({k: v for k, v in report.items() if k != "results"})
        for row in report["results"]:
            name = f"{row['stage']}.{row['attention']}{'.packed' if row['packing'] else ''}"
            kept = ("tokens_per_s", "steps_per_s", "mfu", "peak_memory_gb")
            mlflow.log_metrics({f"{name}.{k}": v for k, v in row.items() if k in kept})
        mlflow.log_dict(report, "gpu_training.json")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_cuda()
    import importlib.util

    import torch

    if args.vllm and importlib.util.find_spec("vllm") is None:
        sys.exit('--vllm needs vLLM: pip install -e ".[vllm]"')
    kernels = ["sdpa"] + (["flash_attention_2"] if importlib.util.find_spec("flash_attn") is not None else [])
    if len(kernels) == 1:
        print("flash_attn is not installed: FlashAttention-2 and packing variants are skipped", flush=True)
    data = rows(args.problems)
    results = []
    if args.only in (None, "sft"):
        for attention in kernels:
            for packing in [False, True] if attention == "flash_attention_2" else [False]:
                results.append(sft_variant(args, data, attention, packing))
                print(json.dumps(results[-1]), flush=True)
    if args.only in (None, "rl"):
        results.append(rl_variant(args, data, kernels[-1]))
        print(json.dumps(results[-1]), flush=True)
    report = {
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "model": args.model,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "peak_tflops": args.peak_tflops,
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2))
    log_to_mlflow(report, args.out)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
