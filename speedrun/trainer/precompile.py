"""Compile the 2026-05 body's graphs side by side, rather than one after the other in the warm-up.

The compiled body has one graph per micro-batch length and window pair (four with record 84's schedule: three
batch stages, then the extension's longer window), each a forward and a backward, and the warm-up met them in
sequence, compiling each from scratch on a fresh machine. Inductor keeps what it compiles in its on-disk
caches, keyed by the graph, and a process that meets a graph another process has compiled loads it in seconds.
So each graph after the first is compiled by another process at the same time:

- one training process (`speedrun train` alone): a helper process per further graph, on the same GPU (each
  needs the memory of one micro-step), started while the trainer compiles the first; the warm-up waits for
  them before it goes past the first;
- several (torchrun): the node's local ranks share the graphs out in turn, then meet at a barrier.

A helper that fails costs nothing but its time: the warm-up compiles what it finds missing. The helpers' memory
is capped so that together they leave the trainer its own peak (`helper_memory_fraction`): on a GPU too small
for all of them, a helper runs out of memory, never the trainer.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch

from speedrun.trainer.config import TrainConfig


def first_step_per_graph(steps: list[int], graph: Callable[[int], Hashable]) -> list[int]:
    """The first of `steps` with each value of `graph(step)` (what the compiled graphs are specialised to), in
    order: the steps that compile."""
    seen: dict[Hashable, int] = {}
    for step in steps:
        seen.setdefault(graph(step), step)
    return list(seen.values())


# the trainer's own peak on one GPU, kept free of helpers: 34,866 MiB reserved, measured (2026-05, one H200)
TRAINER_MEMORY = 36 * 2**30


def helper_memory_fraction(total: int, helpers: int, kept: int = TRAINER_MEMORY) -> float:
    """Each helper's cap, as a fraction of the GPU's `total` bytes: an equal share of what `kept` leaves."""
    return max(0, total - kept) / helpers / total


@dataclass
class CompileHelpers:
    """Helper processes, each compiling the body's graph of one step on this process's GPU."""

    processes: list[tuple[int, multiprocessing.process.BaseProcess]]

    def wait(self) -> None:
        """Wait for every helper; a failed one is reported, and the warm-up compiles its graphs itself."""
        for step, process in self.processes:
            process.join()
            if process.exitcode != 0:
                print(
                    f"warning: the compile helper for step {step}'s graph exited with code "
                    f"{process.exitcode}; the warm-up compiles it instead",
                    file=sys.stderr,
                    flush=True,
                )
        self.processes = []


def start_helpers(config: TrainConfig, steps: list[int], device: torch.device, fp8: bool) -> CompileHelpers:
    """One helper process per step of `steps`, started now (spawned: a forked CUDA process cannot use the GPU)."""
    context = multiprocessing.get_context("spawn")
    fraction = None
    if device.type == "cuda":
        fraction = helper_memory_fraction(torch.cuda.get_device_properties(device).total_memory, len(steps))
        if fraction == 0:
            return CompileHelpers([])  # no room beside the trainer: the warm-up compiles every graph
    processes = []
    for step in steps:
        process = context.Process(
            target=compile_at_step, args=(config, step, str(device), fp8, fraction), name=f"compile-step-{step}"
        )
        process.start()
        processes.append((step, process))
    return CompileHelpers(processes)


def compile_at_step(
    config: TrainConfig, step: int, device_name: str, fp8: bool, memory_fraction: float | None = None
) -> None:
    """A helper's work: the trainer's model, compiled as the trainer compiles it, through one micro-step (forward
    and backward) of random documents at `step`'s plan (its length and windows). Its graphs land in the shared
    compile caches."""
    started = time.perf_counter()
    try:
        _micro_step_at(config, step, device_name, fp8, memory_fraction)
        print(f"compile helper for step {step}: done in {time.perf_counter() - started:.1f}s", flush=True)
    except Exception as error:  # one line, not a traceback: the warm-up goes on without this helper
        print(f"compile helper for step {step}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        sys.exit(1)


def _micro_step_at(config: TrainConfig, step: int, device_name: str, fp8: bool, memory_fraction: float | None) -> None:
    from speedrun.trainer.loop_2026 import Trainer2026

    device = torch.device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        if memory_fraction is not None:
            torch.cuda.set_per_process_memory_fraction(memory_fraction, device)
    trainer = Trainer2026(config, device, rank=0, world_size=1, fp8=fp8, compiled=True, train_paths=[])
    step_plan = trainer.advance(step)
    trainer.micro_step(step_plan, next(trainer.random_batches(step_plan, torch.Generator().manual_seed(4321 + step))))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
