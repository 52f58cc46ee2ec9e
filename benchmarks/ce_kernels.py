"""The fused cross-entropy kernels at the head's shape on the GPU at hand: each launch candidate of the FP8
two-layout backward kernel, the one `softcapped_ce_backward_both_layouts` chooses, and the forward kernel, with
the bytes each must move and the time that takes at the copy bandwidth measured here.

    python benchmarks/ce_kernels.py [--rows 49152] [--vocab 50304]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speedrun.trainer.kernels import (
    CE_BOTH_LAYOUTS_CANDIDATES,
    launch_both_layouts,
    softcapped_ce_backward_both_layouts,
    softcapped_ce_forward,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=48 * 1024, help="tokens of a micro-batch")
    parser.add_argument("--vocab", type=int, default=50304)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("ce_kernels: needs a CUDA GPU")
    from triton.testing import do_bench

    rows, vocab = args.rows, args.vocab
    logits = (torch.randn(rows, vocab, device="cuda") * 20).bfloat16()
    targets = torch.randint(0, vocab, (rows,), device="cuda")
    source = torch.empty(2**30, device="cuda", dtype=torch.uint8)
    copy_ms = do_bench(lambda: source.clone(), return_mode="median")
    bandwidth = 2 * source.numel() / (copy_ms / 1000)  # bytes read plus bytes written per second
    print(f"{torch.cuda.get_device_name(0)}: copy bandwidth {bandwidth / 1e12:.2f} TB/s, shape {rows} x {vocab}")

    floor = 2 * logits.numel() / bandwidth * 1000  # read the bf16 logits once
    ms = do_bench(lambda: softcapped_ce_forward(logits, targets, 15.0, "tanh"), return_mode="median")
    print(f"forward: {ms:.2f} ms (memory floor {floor:.2f} ms)")

    _, lse = softcapped_ce_forward(logits, targets, 15.0, "tanh")
    g8 = torch.empty(rows, vocab, device="cuda", dtype=torch.float8_e5m2)
    g8_t = torch.empty(vocab, rows, device="cuda", dtype=torch.float8_e5m2)
    floor = 4 * logits.numel() / bandwidth * 1000  # read bf16 logits, write two FP8 copies
    for launch in CE_BOTH_LAYOUTS_CANDIDATES:
        ms = do_bench(
            lambda launch=launch: launch_both_layouts(logits, targets, lse, 15.0, "tanh", g8, g8_t, 448.0, launch),
            return_mode="median",
        )
        print(f"backward, two FP8 layouts, {launch}: {ms:.2f} ms (memory floor {floor:.2f} ms)")
    ms = do_bench(
        lambda: softcapped_ce_backward_both_layouts(logits, targets, lse, 15.0, "tanh", torch.float8_e5m2, 448.0),
        return_mode="median",
    )
    print(f"backward, two FP8 layouts, as chosen: {ms:.2f} ms")


if __name__ == "__main__":
    main()
