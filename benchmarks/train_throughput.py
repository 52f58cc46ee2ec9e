"""Training throughput of a track's record model on one GPU, at the record's micro-batch.

    python benchmarks/train_throughput.py --data-dir DATA [--track small] [--steps 10] [--json OUT.json]

Builds the model and optimisers exactly as `speedrun train` does, compiles and warms up (timed separately),
then times `--steps` full optimiser steps (micro_steps_per_step micro-steps of micro_batch_tokens tokens on
one process) on the shards in DATA. Prints tokens/s, step time, MFU, peak memory and compile+warmup time.

FLOPs are counted explicitly: 6 x (matmul weights touched per token) per token, plus attention
(QK^T and AV) over the keys each query actually attends to under the document and window mask, times 3 for
forward plus backward. MFU divides by the bf16 peak measured with a large matmul on the same GPU.

`--kernel-gain` also times the fused softcapped cross-entropy against its PyTorch reference at the record's
shape (forward + backward), and the FP8 head's gradient in both layouts: one two-layout kernel against the row
kernel followed by a transposing copy, over a few tile shapes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from speedrun.trainer import data
from speedrun.trainer.config import ATTENTION_BLOCK_SIZE, ModelConfig, TrainConfig, get_config
from speedrun.trainer.kernels import (
    CE_BOTH_LAYOUTS_CANDIDATES,
    CE_LAUNCH,
    launch_both_layouts,
    softcapped_ce_backward,
    softcapped_ce_backward_both_layouts,
    softcapped_ce_forward,
    softcapped_cross_entropy,
    softcapped_cross_entropy_reference,
)
from speedrun.trainer.model import EOT_TOKEN
from speedrun.trainer.schedule import window_blocks
from speedrun.trainer.train import (
    Process,
    build_model,
    build_optimizers,
    train_step,
    use_expandable_segments,
    warm_up,
)


def measured_bf16_peak_tflops(size: int = 8192, repeats: int = 20) -> float:
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e12


def attended_keys(inputs: torch.Tensor, window: int) -> int:
    """Total (query, key) pairs allowed by the causal, same-document, `window`-block mask."""
    pos = torch.arange(inputs.numel(), device=inputs.device)
    is_start = inputs == EOT_TOKEN
    is_start[0] = True
    doc_start = torch.cummax(torch.where(is_start, pos, torch.zeros_like(pos)), dim=0).values
    window_start = (pos // ATTENTION_BLOCK_SIZE - window + 1).clamp(min=0) * ATTENTION_BLOCK_SIZE
    return int((pos - torch.maximum(doc_start, window_start) + 1).sum())


def forward_flops(model: ModelConfig, tokens: int, pairs_long: int, pairs_short: int) -> int:
    """Forward FLOPs of one micro-batch: matmuls against weights, the head, and attention over allowed pairs."""
    d, inner = model.model_dim, model.num_heads * model.head_dim
    hidden = model.mlp_ratio * d
    flops = 0
    for layer in range(model.num_layers):
        flops += 2 * tokens * 2 * d * hidden  # MLP in and out
        if layer in model.layers_without_attention:
            continue
        flops += 2 * tokens * 4 * d * inner  # q, k, v and output projections
        pairs = pairs_long if layer in model.long_window_layers else pairs_short
        flops += 2 * 2 * pairs * inner  # scores and weighted values
    flops += 2 * tokens * d * model.vocab_size  # head
    return flops


def kernel_gain(config: TrainConfig, repeats: int = 10) -> dict[str, float]:
    """Milliseconds per forward+backward of the cross-entropy at (micro_batch_tokens, vocab), fused vs reference."""
    rows, vocab = config.data.micro_batch_tokens, config.model.vocab_size
    base = (torch.randn(rows, vocab, device="cuda") * 20).bfloat16()
    targets = torch.randint(0, vocab, (rows,), device="cuda")
    cap, kind = config.model.logit_softcap, config.model.softcap_kind

    def run(loss_fn: object) -> float:
        times = []
        for i in range(repeats + 2):
            logits = base.clone().requires_grad_(True)
            torch.cuda.synchronize()
            start = time.perf_counter()
            loss_fn(logits, targets, cap, kind).backward()  # type: ignore[operator]
            torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - start)
            del logits
        return 1000 * sorted(times)[len(times) // 2]

    figures = {"cross_entropy_reference_ms": run(softcapped_cross_entropy_reference)}
    default = dict(CE_LAUNCH)
    for block, warps in ((default["BLOCK"], default["num_warps"]), (1024, 4), (4096, 8), (8192, 16), (2048, 8)):
        CE_LAUNCH.update(BLOCK=block, num_warps=warps)
        figures[f"cross_entropy_fused_ms_block{block}_warps{warps}"] = run(softcapped_cross_entropy)
    CE_LAUNCH.update(default)
    figures.update(fp8_gradient_layouts(base, targets, cap, kind, repeats))
    return figures


def fp8_gradient_layouts(
    logits: torch.Tensor, targets: torch.Tensor, cap: float, kind: str, repeats: int
) -> dict[str, float]:
    """Milliseconds to produce the FP8 head's logit gradient row-major and transposed: the row kernel plus a
    transposing copy, against the two-layout kernel under each candidate launch and under the one it chose."""
    _, lse = softcapped_ce_forward(logits, targets, cap, kind)
    ones = torch.ones(1, device="cuda")

    def row_kernel_then_copy() -> None:
        g8 = torch.empty_like(logits, dtype=torch.float8_e5m2)
        softcapped_ce_backward(logits, targets, lse, ones, cap, kind, out=g8, out_scale=448.0)
        g8.t().contiguous()

    def chosen() -> None:
        softcapped_ce_backward_both_layouts(logits, targets, lse, cap, kind, torch.float8_e5m2, out_scale=448.0)

    def median_ms(fn: object) -> float:
        times = []
        for i in range(repeats + 2):
            torch.cuda.synchronize()
            start = time.perf_counter()
            fn()  # type: ignore[operator]
            torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - start)
        return 1000 * sorted(times)[len(times) // 2]

    figures = {"fp8_grad_row_kernel_and_transpose_ms": median_ms(row_kernel_then_copy)}
    for launch in CE_BOTH_LAYOUTS_CANDIDATES:

        def two_layouts(launch: dict[str, int | bool] = launch) -> None:
            g8 = torch.empty_like(logits, dtype=torch.float8_e5m2)
            g8_t = torch.empty(logits.size(1), logits.size(0), device="cuda", dtype=torch.float8_e5m2)
            launch_both_layouts(logits, targets, lse, cap, kind, g8, g8_t, 448.0, launch)

        name = "_".join(f"{k.lower()}{int(v)}" for k, v in launch.items())
        figures[f"fp8_grad_two_layouts_ms_{name}"] = median_ms(two_layouts)
    figures["fp8_grad_two_layouts_ms_chosen"] = median_ms(chosen)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="folder with fineweb_train_*.bin shards")
    parser.add_argument("--track", default="small", help="small or medium")
    parser.add_argument("--preset", default=None, help="config preset (default: the record recipe)")
    parser.add_argument("--steps", type=int, default=10, help="timed optimiser steps")
    parser.add_argument("--at", type=float, default=0.5, help="training progress whose window size is used")
    parser.add_argument("--no-compile", action="store_true", help="run eagerly")
    parser.add_argument("--kernel-gain", action="store_true", help="also time the fused cross-entropy kernel")
    parser.add_argument("--profile", action="store_true", help="print the GPU kernels of two profiled steps")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()

    if not torch.cuda.is_available():
        raise SystemExit("train_throughput: needs a CUDA GPU")
    config = get_config(args.track, args.preset)
    proc = Process(rank=0, world_size=1, local_rank=0, device=torch.device("cuda", 0))
    use_expandable_segments(proc.device)  # as `speedrun train` does, before the first allocation
    gpu = torch.cuda.get_device_name(0)
    peak_tflops = measured_bf16_peak_tflops()

    started = time.perf_counter()
    model = build_model(config, proc, compiled=not args.no_compile)
    optimizers = build_optimizers(model, config, proc)
    warm_up(model, optimizers, config, proc)
    torch.cuda.synchronize()
    compile_and_warmup_s = time.perf_counter() - started

    step = int(args.at * config.num_iterations)
    window = window_blocks(step, config)
    loader = data.DistributedTokenLoader(
        data.train_files(args.data_dir),
        config.data.micro_batch_tokens,
        0,
        1,
        config.data.align_to_bos,
        proc.device,
        micro_steps_per_step=config.data.micro_steps_per_step,
    )
    # count the FLOPs of the exact micro-batches that will be timed, from a second loader over the same stream
    counter = data.DistributedTokenLoader(
        data.train_files(args.data_dir),
        config.data.micro_batch_tokens,
        0,
        1,
        config.data.align_to_bos,
        proc.device,
        micro_steps_per_step=config.data.micro_steps_per_step,
    )
    next(counter)  # the batch of the untimed settling step below
    flops = 0
    for _ in range(args.steps * config.data.micro_steps_per_step):
        inputs, _ = next(counter)
        pairs_long = attended_keys(inputs, window)
        pairs_short = attended_keys(inputs, max(window // 2, 1))
        flops += 3 * forward_flops(config.model, inputs.numel(), pairs_long, pairs_short)
    counter.close()

    train_step(model, optimizers, _repeat_first(loader, config.data.micro_steps_per_step), step, config, proc)  # settle
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        train_step(model, optimizers, loader, step, config, proc)
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    loader.close()

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(2):
                train_step(model, optimizers, loader, step, config, proc)
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=45, max_name_column_width=70))

    tokens = args.steps * config.global_batch_tokens
    figures: dict[str, object] = {
        "gpu": gpu,
        "track": config.track,
        "preset": config.preset,
        "micro_batch_tokens": config.data.micro_batch_tokens,
        "micro_steps_per_step": config.data.micro_steps_per_step,
        "window_blocks": window,
        "timed_steps": args.steps,
        "step_ms": 1000 * elapsed / args.steps,
        "tokens_per_s_per_gpu": tokens / elapsed,
        "model_tflops": flops / elapsed / 1e12,
        "peak_bf16_tflops_measured": peak_tflops,
        "mfu": flops / elapsed / 1e12 / peak_tflops,
        "peak_memory_allocated_mib": torch.cuda.max_memory_allocated() // 2**20,
        "peak_memory_reserved_mib": torch.cuda.max_memory_reserved() // 2**20,
        "compile_and_warmup_s": compile_and_warmup_s,
        "fp8_head": model.use_fp8_head,
        "compiled": not args.no_compile,
    }
    if args.kernel_gain:
        del model, optimizers
        torch.cuda.empty_cache()
        figures.update(kernel_gain(config))
    for key, value in figures.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


def _repeat_first(loader: data.DistributedTokenLoader, count: int) -> object:
    """A short iterator for one untimed settling step (it does not consume the timed batches' order)."""
    first = next(loader)
    return iter([first] * count)


if __name__ == "__main__":
    main()
