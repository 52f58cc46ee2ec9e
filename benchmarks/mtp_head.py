"""The 2026-05 head's loss at each batch stage's micro-batch (one GPU: 16Ki rows and 3 predicted tokens, 32Ki and
2, 48Ki and 1) on the GPU at hand, forward and backward from the bf16 logits to the FP8 gradient in the two
layouts the head's matmuls read: our Triton kernels (`mtp_kernels.py`; Triton's sigmoid or record 84's tanh form,
computed in both passes or kept from the forward pass: the sigmoid kept adds a bf16 write, so 8 bytes a logit
against the floor's 6), the compiled PyTorch path they replaced
(loss and bf16 gradient, row scaling, e5m2 with a transposed copy), and record 84's CUDA kernel with its
transposing copy when its log is at hand (`--record-log`, compiled from the log: published record code).

    python benchmarks/mtp_head.py [--record-log benchmarks/record84.txt] [--stages 1,2,3] [--launches]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from speedrun.trainer.kernels import CE_BOTH_LAYOUTS_CANDIDATES  # noqa: E402
from speedrun.trainer.layers.head import (  # noqa: E402
    compiled_on_gpu,
    mtp_softcapped_cross_entropy,
    multi_token_targets,
)
from speedrun.trainer.mtp_kernels import (  # noqa: E402
    KEEP_SIGMOID,
    TANH_SIGMOID,
    mtp_backward_both_layouts,
    mtp_forward,
)

VOCAB, ABC, GRAD_S, MICRO_STEPS = 50304, (23.0, 5.0, 7.5), 0.75 / 448, 8
STAGES = {1: (16 * 1024, (1.0, 0.5, 0.25)), 2: (32 * 1024, (1.0, 0.5)), 3: (48 * 1024, (1.0,))}


def ours(
    logits: torch.Tensor, targets: torch.Tensor, weights: tuple[float, ...], keep_sigmoid: bool, tanh: bool
) -> Callable[[], object]:
    targets_ahead, row_weights = multi_token_targets(targets, weights)
    upstream = torch.full((logits.size(0),), 1 / MICRO_STEPS, device="cuda")
    # with keep_sigmoid the forward writes sigmoids over these logits, and the next call starts from those: the
    # kernels' work does not depend on the values, and a fresh copy each call would add its own memory traffic
    logits = logits.clone()

    def run() -> object:
        _, lse = mtp_forward(logits, targets_ahead, row_weights, ABC, keep_sigmoid=keep_sigmoid, tanh=tanh)
        return mtp_backward_both_layouts(
            logits, targets_ahead, row_weights, lse, upstream, ABC, torch.float8_e5m2, MICRO_STEPS / GRAD_S,
            is_sigmoid=keep_sigmoid, tanh=tanh,
        )  # fmt: skip

    return run


def compiled_pytorch(logits: torch.Tensor, targets: torch.Tensor, weights: tuple[float, ...]) -> Callable[[], object]:
    """The path the kernels replaced: `mtp_softcapped_cross_entropy` (loss and bf16 gradient in the forward, rows
    scaled in the backward), then the e5m2 gradient and its transpose as the FP8 head's backward made them."""
    leaf = logits.detach().requires_grad_(True)
    upstream = torch.full((logits.size(0),), 1 / MICRO_STEPS, device="cuda")
    quantise = compiled_on_gpu(to_e5m2, logits.device)

    def run() -> object:
        losses = mtp_softcapped_cross_entropy(leaf, targets, weights, ABC)
        (grad,) = torch.autograd.grad(losses, leaf, upstream)
        g8 = quantise(grad)
        return g8, g8.t().contiguous()

    return run


def to_e5m2(grad: torch.Tensor) -> torch.Tensor:
    return (grad / (GRAD_S / MICRO_STEPS)).to(torch.float8_e5m2)


def record84(
    scope: dict, logits: torch.Tensor, targets: torch.Tensor, weights: tuple[float, ...]
) -> Callable[[], object]:
    rows = logits.size(0)
    mtp = torch.tensor(weights, device="cuda")
    losses = torch.empty(rows, device="cuda")
    grad = torch.empty(rows, VOCAB, device="cuda", dtype=torch.float8_e5m2)
    grad_t = torch.empty(VOCAB, rows, device="cuda", dtype=torch.float8_e5m2)
    args = (rows, len(weights), *ABC, GRAD_S / MICRO_STEPS, 1 / MICRO_STEPS)

    def run() -> object:
        scope["ce_fwd_bwd"](logits, targets, mtp, losses, grad, *args)
        scope["transpose_copy"](grad, grad_t)
        return grad, grad_t

    return run


def time_launches(
    logits: torch.Tensor, targets: torch.Tensor, weights: tuple[float, ...], do_bench: Callable[..., float]
) -> None:
    """The backward kernel alone at each of CE_BOTH_LAYOUTS_CANDIDATES, as the FP8 head calls it."""
    targets_ahead, row_weights = multi_token_targets(targets, weights)
    upstream = torch.full((logits.size(0),), 1 / MICRO_STEPS, device="cuda")
    values = logits.clone()
    _, lse = mtp_forward(values, targets_ahead, row_weights, ABC, keep_sigmoid=KEEP_SIGMOID, tanh=TANH_SIGMOID)
    for launch in CE_BOTH_LAYOUTS_CANDIDATES:
        ms = do_bench(
            lambda launch=launch: mtp_backward_both_layouts(
                values, targets_ahead, row_weights, lse, upstream, ABC, torch.float8_e5m2, MICRO_STEPS / GRAD_S,
                launch, is_sigmoid=KEEP_SIGMOID, tanh=TANH_SIGMOID,
            ),
            return_mode="median",
        )  # fmt: skip
        print(f"  backward kernel at {launch}: {ms:.2f} ms a micro-step")


def load_record_kernel(log: Path) -> dict:
    from tests.record84 import load  # published record code, compiled and run on this explicit command

    names = ["CE_KERNEL_BLOCK_SIZE", "CE_KERNEL_VOCAB_SIZE", "CE_KERNEL_DECLS", "CE_KERNEL_SOURCE",
             "ce_fwd_bwd_kernel", "ce_fwd_bwd", "_transpose_copy_kernel", "transpose_copy"]  # fmt: skip
    import triton
    import triton.language as tl

    scope = load(log, names, file="triton_kernels.py", triton=triton, tl=tl)
    scope["ce_fwd_bwd_kernel"].set_shared_memory_config(scope["CE_KERNEL_VOCAB_SIZE"] * 2)
    return scope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record-log", type=Path, help="record 84's published log, to time its kernel too")
    parser.add_argument("--stages", default="1,2,3", help="batch stages, comma-separated")
    parser.add_argument("--launches", action="store_true", help="also time the backward kernel at each launch setting")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("mtp_head: needs a CUDA GPU")
    from triton.testing import do_bench

    scope = load_record_kernel(args.record_log) if args.record_log else None
    source = torch.empty(2**30, device="cuda", dtype=torch.uint8)
    bandwidth = 2 * source.numel() / (do_bench(lambda: source.clone(), return_mode="median") / 1000)
    print(f"{torch.cuda.get_device_name(0)}: copy bandwidth {bandwidth / 1e12:.2f} TB/s")
    for stage in (int(s) for s in args.stages.split(",")):
        rows, weights = STAGES[stage]
        logits = (8 * torch.randn(rows, VOCAB, device="cuda")).bfloat16()
        targets = torch.randint(0, VOCAB, (rows,), device="cuda")
        floor = 6 * logits.numel() / bandwidth * 1000  # ours: read the bf16 logits twice, write two FP8 copies
        sides = {
            f"ours (Triton{', tanh' if tanh else ''}{', sigmoid kept' if keep else ''})": ours(
                logits, targets, weights, keep_sigmoid=keep, tanh=tanh
            )
            for tanh in (False, True)
            for keep in (False, True)
        }
        sides["compiled PyTorch"] = compiled_pytorch(logits, targets, weights)
        if scope is not None:
            sides["record 84 (CUDA)"] = record84(scope, logits, targets, weights)
        if args.launches:
            time_launches(logits, targets, weights, do_bench)
        for name, run in sides.items():
            run()  # compiles, and picks the backward kernel's launch settings
            ms = do_bench(run, return_mode="median")
            print(f"stage {stage} ({rows} rows, {len(weights)} predicted): {name}: {ms:.2f} ms a micro-step, "
                  f"{ms * MICRO_STEPS:.1f} ms a step (memory floor {floor:.2f} ms a micro-step)")  # fmt: skip


if __name__ == "__main__":
    main()
