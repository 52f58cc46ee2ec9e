"""Registers and local-memory spills (stack bytes per thread) of the two-layout loss kernels at every launch
candidate, from Triton's ahead-of-time compile for a Hopper GPU (sm_90): no GPU needed, only Triton and its
bundled `cuobjdump`. A kernel that spills keeps part of each tile in local memory, which costs memory traffic and
latency on every pass; which candidate is fastest is still for the GPU to say (`ce_kernels.py`, `mtp_head.py`).

    python benchmarks/kernel_registers.py [--arch 90]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BAND = {"BLOCK_ROWS": "constexpr", "BLOCK_COLS": "constexpr", "TRANSPOSE_TILE": "constexpr"}
SIGNATURES = {
    "softcapped": {
        "logits_ptr": "*bf16", "targets_ptr": "*i64", "lse_ptr": "*fp32", "out_ptr": "*fp8e5", "out_t_ptr": "*fp8e5",
        "out_scale": "fp32", "rows": "i32", "row_stride": "i32", "vocab_size": "i32", "cap": "fp32",
        "KIND": "constexpr", **BAND,
    },
    "multi-token": {
        "logits_ptr": "*bf16", "targets_ptr": "*i64", "weights_ptr": "*fp32", "lse_ptr": "*fp32",
        "grad_losses_ptr": "*fp32", "out_ptr": "*fp8e5", "out_t_ptr": "*fp8e5", "out_scale": "fp32", "rows": "i32",
        "row_stride": "i32", "vocab_size": "i32", "a": "fp32", "inv_c": "fp32", "b_over_c": "fp32",
        "K": "constexpr", "IS_SIGMOID": "constexpr", "TANH": "constexpr", **BAND,
    },
}  # fmt: skip


def resource_usage(kernel: object, cuobjdump: Path) -> tuple[int, int]:
    """(registers, stack bytes) per thread of a compiled kernel."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(kernel.asm["cubin"])  # type: ignore[attr-defined]
        cubin.flush()
        out = subprocess.run([str(cuobjdump), "-res-usage", cubin.name], capture_output=True, text=True).stdout
    found = re.search(r"REG:(\d+).*?STACK:(\d+)", out)
    if found is None:
        raise SystemExit(f"kernel_registers: cuobjdump printed no resource usage: {out[-300:]}")
    return int(found.group(1)), int(found.group(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability, as 90 for sm_90")
    args = parser.parse_args()
    try:
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError:
        raise SystemExit("kernel_registers: needs Triton (pip install 'speedrun[train]')") from None

    from speedrun.trainer import kernels, mtp_kernels

    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    target = GPUTarget("cuda", args.arch, 32)
    variants = {
        "softcapped": (kernels._softcapped_ce_backward_both_layouts, {"KIND": 0}),
        "multi-token K=3": (mtp_kernels._mtp_backward_both_layouts, {"K": 3, "IS_SIGMOID": False, "TANH": False}),
        "multi-token K=1": (mtp_kernels._mtp_backward_both_layouts, {"K": 1, "IS_SIGMOID": False, "TANH": False}),
        "multi-token K=3, kept tanh sigmoid": (
            mtp_kernels._mtp_backward_both_layouts, {"K": 3, "IS_SIGMOID": True, "TANH": True}
        ),
    }  # fmt: skip
    print(f"sm_{args.arch}: registers and stack bytes per thread")
    for launch in kernels.CE_BOTH_LAYOUTS_CANDIDATES:
        tile = {key: value for key, value in launch.items() if key != "num_warps"}
        per_thread = int(launch["BLOCK_ROWS"]) * int(launch["BLOCK_COLS"]) // (32 * int(launch["num_warps"]))
        cells = []
        for name, (fn, constants) in variants.items():
            source = ASTSource(fn, SIGNATURES[name.split()[0]], constexprs={**tile, **constants})
            compiled = triton.compile(source, target=target, options={"num_warps": launch["num_warps"]})
            registers, stack = resource_usage(compiled, cuobjdump)
            cells.append(f"{name}: {registers} regs, {stack} B stack")
        print(f"{launch} ({per_thread} logits a thread): " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main()
