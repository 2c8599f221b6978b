"""Several training processes (`accelerate launch`): which one is the main one, and waiting for the others.

Every process runs the same `distill sft` or `distill rl` command. All of them train (TRL and
accelerate split the batches and sync the gradients); only the main one (global rank 0) opens MLflow
runs, writes the config, summary and manifests, clears partial work and renames the saved model into
place. The rank is read from the environment the launcher sets (`RANK`, `WORLD_SIZE`), so it is known
before `torch.distributed` starts; the process group is started only when the processes must wait for
each other, with accelerate's own defaults (gloo on CPU, NCCL on GPUs).
"""

from __future__ import annotations

import os

# Stages that run under several processes: the rest generate or measure, which scale elsewhere
# (teacher traces through vLLM or any OpenAI-compatible endpoint; eval and bench on one device).
DISTRIBUTED_STAGES = ("sft", "rl")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_distributed() -> bool:
    return world_size() > 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    """Wait until every process gets here; nothing to do in a single process."""
    if not is_distributed():
        return
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def refusal(command: str) -> str | None:
    """Why `command` may not run under several processes, or None if it may."""
    if not is_distributed() or command in DISTRIBUTED_STAGES:
        return None
    return (
        f"`distill {command}` runs in one process, but this is process {rank()} of {world_size()} "
        f"(WORLD_SIZE={world_size()}): only the {' and '.join(DISTRIBUTED_STAGES)} stages train under "
        "`accelerate launch`. Run the other stages with plain `distill`; teacher generation scales through "
        "vLLM or an OpenAI-compatible endpoint instead."
    )
