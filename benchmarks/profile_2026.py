"""Where a step of the 2026-05 recipe spends its time on one GPU, stage by stage.

    python benchmarks/profile_2026.py [--steps 3] [--top 12] [--preset tiny --device cpu]

Builds the model and optimisers as `speedrun train --recipe 2026-05` does (one process, 8 micro-steps a step)
and, for each batch stage of the schedule, compiles that stage's shapes on random documents (timed apart),
times `--steps` full optimiser steps, then profiles one more. It prints, per stage: tokens per step, ms per
step, tokens per second, peak memory, the share of the step the GPU is busy (the union of the kernels' intervals
over wall time: well below 1 means the step waits on the host), the kernels that take the most GPU time, and
the operators that take the most host time (where a step that waits on the host spends it). `--preset tiny
--device cpu` checks the script itself on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speedrun.trainer.config import get_config
from speedrun.trainer.loop_2026 import Trainer2026, random_documents
from speedrun.trainer.stages import transition_steps


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gpu_busy_ms(prof: profile) -> float:
    """Wall time during which at least one kernel or copy ran on the GPU: the union of their intervals. (Summing
    their times counts overlapping ones twice, and the profiler's table repeats a kernel under the operator that
    launched it.)"""
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events() if e.device_type == DeviceType.CUDA)
    busy_us, reached = 0.0, float("-inf")
    for start, end in spans:
        if end > reached:
            busy_us += end - max(start, reached)
            reached = end
    return busy_us / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per stage")
    parser.add_argument("--top", type=int, default=12, help="kernels listed per stage")
    parser.add_argument("--preset", default=None, help="tiny: the CPU preset")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--trace", type=Path, default=None, help="folder for each stage's Chrome trace (.json.gz)")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    config = get_config("small", args.preset, "2026-05")
    trainer = Trainer2026(config, device, rank=0, world_size=1, fp8=cuda, compiled=cuda, train_paths=[])
    generator = torch.Generator().manual_seed(0)
    starts = [0, *transition_steps(config.schedule)][: len(config.schedule.stages) - 1]  # the extension adds none
    where = torch.cuda.get_device_name(device) if cuda else "CPU"
    attention = trainer.config.model.attention if cuda else "dense"  # type: ignore[union-attr]  # auto, settled
    print(f"2026-05 recipe on {where}, one process, attention: {attention}", flush=True)
    for stage, start in enumerate(starts, 1):
        step_plan = dataclasses.replace(trainer.advance(start + 1), untie=False)  # an Adam step, no untying
        tokens = step_plan.batch_tokens // trainer.micro_steps
        batches = random_documents(tokens, step_plan.max_seq_len, generator, device)
        began = time.perf_counter()
        trainer.train_step(step_plan, batches)
        synchronize(device)
        compile_s = time.perf_counter() - began
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        began = time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step(step_plan, batches)
        synchronize(device)
        step_ms = (time.perf_counter() - began) / args.steps * 1000
        activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
        with profile(activities=activities) as prof:
            began = time.perf_counter()
            trainer.train_step(step_plan, batches)
            synchronize(device)
            profiled_ms = (time.perf_counter() - began) * 1000
        events = prof.key_averages()
        if args.trace is not None:
            args.trace.mkdir(parents=True, exist_ok=True)
            prof.export_chrome_trace(str(args.trace / f"stage{stage}.json.gz"))
        busy_ms = gpu_busy_ms(prof)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
        print(
            f"\nstage {stage} (step {step_plan.step}): {step_plan.batch_tokens:,} tokens a step, documents of up to "
            f"{step_plan.max_seq_len}, windows {step_plan.windows}; first step with compilation {compile_s:.1f} s\n"
            f"  {step_ms:.0f} ms a step, {step_plan.batch_tokens / step_ms * 1000:,.0f} tokens/s, peak {peak:.1f} GiB;"
            f" profiled step {profiled_ms:.0f} ms, GPU busy {busy_ms:.0f} ms ({busy_ms / profiled_ms:.0%})",
            flush=True,
        )
        if cuda:
            print(events.table(sort_by="self_device_time_total", row_limit=args.top, max_name_column_width=60))
        print(events.table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=60))
    return 0


if __name__ == "__main__":
    sys.exit(main())
