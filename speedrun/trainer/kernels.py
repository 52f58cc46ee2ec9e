"""Triton kernels, each beside the PyTorch reference it must match.

The fused softcapped cross-entropy reads the bf16 head logits twice in the forward pass and once in the
backward pass, and writes the gradient over the logits in place (or, for the FP8 head, into FP8 buffers in
both the layouts its two backward matmuls need). PyTorch's path materialises fp32 copies of
the logits, the softcapped logits and their log-softmax: at 48Ki tokens x 50304 classes that is tens of
gigabytes of memory traffic per micro-step, which the kernel avoids.

Triton is optional: on machines without it (or without a GPU) `softcapped_cross_entropy` runs the reference.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs
    triton = None
    tl = None

SOFTCAP_KINDS = {"tanh": 0, "algebraic": 1}


def softcap(logits: Tensor, cap: float, kind: str) -> Tensor:
    """Squash logits smoothly into (-cap, cap): cap*tanh(x/cap), or cap*x/sqrt(x^2+cap^2)."""
    if kind == "tanh":
        return cap * torch.tanh(logits / cap)
    if kind == "algebraic":
        return cap * logits * torch.rsqrt(logits.square() + cap * cap)
    raise ValueError(f"unknown softcap kind {kind!r}")


def softcapped_cross_entropy_reference(logits: Tensor, targets: Tensor, cap: float, kind: str) -> Tensor:
    """Mean cross-entropy of softcapped logits, in fp32: the definition the kernel must match."""
    return F.cross_entropy(softcap(logits.float(), cap, kind), targets.long())


if triton is not None:

    @triton.jit
    def _softcap_and_slope(x, cap, KIND: tl.constexpr):
        """The softcapped value of x and its derivative d(softcap)/dx."""
        if KIND == 0:
            t = 2.0 / (1.0 + tl.exp(-2.0 * x / cap)) - 1.0  # tanh(x/cap)
            return cap * t, 1.0 - t * t
        else:
            r = 1.0 / tl.sqrt(x * x + cap * cap)
            return cap * x * r, cap * cap * cap * r * r * r

    @triton.jit
    def _softcapped_ce_forward(
        logits_ptr,
        targets_ptr,
        losses_ptr,
        lse_ptr,
        row_stride,
        vocab_size,
        cap,
        KIND: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        row = tl.program_id(0).to(tl.int64)
        row_ptr = logits_ptr + row * row_stride
        running_max = tl.full([BLOCK], float("-inf"), tl.float32)
        running_sum = tl.zeros([BLOCK], tl.float32)
        for start in range(0, vocab_size, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            x = tl.load(row_ptr + cols, mask=cols < vocab_size, other=0.0).to(tl.float32)
            z, _ = _softcap_and_slope(x, cap, KIND)
            z = tl.where(cols < vocab_size, z, float("-inf"))
            new_max = tl.maximum(running_max, z)
            # lanes that have only seen -inf keep a zero sum (avoid inf - inf)
            scale = tl.where(running_max == float("-inf"), 0.0, tl.exp(running_max - new_max))
            running_sum = running_sum * scale + tl.where(z == float("-inf"), 0.0, tl.exp(z - new_max))
            running_max = new_max
        row_max = tl.max(running_max, axis=0)
        total = tl.sum(running_sum * tl.exp(running_max - row_max), axis=0)
        lse = row_max + tl.log(total)
        target = tl.load(targets_ptr + row).to(tl.int64)
        target_z, _ = _softcap_and_slope(tl.load(row_ptr + target).to(tl.float32), cap, KIND)
        tl.store(losses_ptr + row, lse - target_z)
        tl.store(lse_ptr + row, lse)

    @triton.jit
    def _softcapped_ce_backward(
        logits_ptr,
        targets_ptr,
        lse_ptr,
        grad_losses_ptr,
        grad_losses_stride,
        out_ptr,
        out_scale,
        row_stride,
        vocab_size,
        cap,
        KIND: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        """out = d(loss)/d(logit) * out_scale = (softmax(z) - onehot) * slope * grad_loss * out_scale.

        `out` may be the logits themselves (overwritten in place) or an FP8 buffer for the head's backward;
        a `grad_losses_stride` of 0 broadcasts one upstream gradient to every row."""
        row = tl.program_id(0).to(tl.int64)
        row_ptr = logits_ptr + row * row_stride
        out_row_ptr = out_ptr + row * row_stride
        lse = tl.load(lse_ptr + row)
        grad_loss = tl.load(grad_losses_ptr + row * grad_losses_stride).to(tl.float32) * out_scale
        target = tl.load(targets_ptr + row).to(tl.int64)
        for start in range(0, vocab_size, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            inside = cols < vocab_size
            x = tl.load(row_ptr + cols, mask=inside, other=0.0).to(tl.float32)
            z, slope = _softcap_and_slope(x, cap, KIND)
            prob = tl.exp(z - lse)
            grad = (prob - tl.where(cols == target, 1.0, 0.0)) * slope * grad_loss
            tl.store(out_row_ptr + cols, grad.to(out_ptr.dtype.element_ty), mask=inside)

    @triton.jit
    def store_both_layouts(
        out_ptr, out_t_ptr, grad, row_ids, row_offsets, cols, inside, rows, TRANSPOSE_TILE: tl.constexpr
    ):
        """A (BLOCK_ROWS, BLOCK_COLS) tile of a gradient in out's dtype, stored row-major into `out` (rows,
        vocab) and transposed into `out_t` (vocab, rows): see `_softcapped_ce_backward_both_layouts`."""
        grad = grad.to(out_ptr.dtype.element_ty)
        tl.store(out_ptr + row_offsets[:, None] + cols[None, :], grad, mask=inside)
        if TRANSPOSE_TILE:
            out_t = out_t_ptr + cols[:, None].to(tl.int64) * rows + row_ids[None, :]
            tl.store(out_t, tl.trans(grad), mask=tl.trans(inside))
        else:
            tl.store(out_t_ptr + cols[None, :].to(tl.int64) * rows + row_ids[:, None], grad, mask=inside)

    @triton.jit
    def _softcapped_ce_backward_both_layouts(
        logits_ptr,
        targets_ptr,
        lse_ptr,
        out_ptr,
        out_t_ptr,
        out_scale,
        rows,
        row_stride,
        vocab_size,
        cap,
        KIND: tl.constexpr,
        BLOCK_ROWS: tl.constexpr,
        BLOCK_COLS: tl.constexpr,
        TRANSPOSE_TILE: tl.constexpr,
    ):
        """The backward kernel's gradient (one upstream gradient of 1 for every row, times out_scale), written
        twice: row-major into `out` (rows, vocab) and transposed into `out_t` (vocab, rows).

        A program owns a band of BLOCK_ROWS rows and walks the vocabulary in tiles, so each tile's transposed
        store writes BLOCK_ROWS contiguous bytes per column instead of one byte per row. With TRANSPOSE_TILE
        the tile is transposed in the program before that store (through shared memory), so that neighbouring
        threads store neighbouring bytes of `out_t` rather than bytes a whole column apart."""
        row_ids = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
        row_inside = row_ids < rows
        row_offsets = row_ids.to(tl.int64) * row_stride
        lse = tl.load(lse_ptr + row_ids, mask=row_inside, other=0.0)
        target = tl.load(targets_ptr + row_ids, mask=row_inside, other=-1).to(tl.int64)
        for start in range(0, vocab_size, BLOCK_COLS):
            cols = start + tl.arange(0, BLOCK_COLS)
            inside = row_inside[:, None] & (cols[None, :] < vocab_size)
            x = tl.load(logits_ptr + row_offsets[:, None] + cols[None, :], mask=inside, other=0.0).to(tl.float32)
            z, slope = _softcap_and_slope(x, cap, KIND)
            prob = tl.exp(z - lse[:, None])
            grad = (prob - tl.where(cols[None, :] == target[:, None], 1.0, 0.0)) * slope * out_scale
            store_both_layouts(out_ptr, out_t_ptr, grad, row_ids, row_offsets, cols, inside, rows, TRANSPOSE_TILE)


# launch settings of the row kernels (a row per program, the vocabulary in chunks of BLOCK)
CE_LAUNCH = {"BLOCK": 2048, "num_warps": 4}
# launch settings of the two-layout backward kernel (a band of rows per program, the vocabulary in tiles), the
# fastest of CE_BOTH_LAYOUTS_CANDIDATES on the GPU at hand, chosen by timing each on the first call for a given
# shape (benchmarks/ce_kernels.py prints them all). On an H200 at 49152 x 50304 (FP8 out), against a memory floor
# of 2.36 ms: 10.40 ms for 32 x 512 tiles stored untransposed, 10.39 transposed, 10.13 for 64 x 128 (4 warps,
# the one chosen there), 10.47 for 128 x 128, 13.14 for 128 x 64; the row kernel followed by a transposing copy
# took 18.8. Transposing the tile barely matters: the kernel is bound by its arithmetic (two exponentials, a
# division and the FP8 conversion per logit), not by its stores.
CE_BOTH_LAYOUTS_CANDIDATES = (
    {"BLOCK_ROWS": 32, "BLOCK_COLS": 512, "num_warps": 8, "TRANSPOSE_TILE": False},
    {"BLOCK_ROWS": 32, "BLOCK_COLS": 512, "num_warps": 8, "TRANSPOSE_TILE": True},
    {"BLOCK_ROWS": 64, "BLOCK_COLS": 256, "num_warps": 8, "TRANSPOSE_TILE": True},
    {"BLOCK_ROWS": 64, "BLOCK_COLS": 128, "num_warps": 4, "TRANSPOSE_TILE": True},
    {"BLOCK_ROWS": 128, "BLOCK_COLS": 128, "num_warps": 8, "TRANSPOSE_TILE": True},
    {"BLOCK_ROWS": 128, "BLOCK_COLS": 64, "num_warps": 4, "TRANSPOSE_TILE": True},
    # 16 or 32 logits a thread rather than 64: compiled for sm_90, every candidate above keeps part of its tile in
    # local memory (100 to 2,900 stack bytes a thread), these none (benchmarks/kernel_registers.py)
    {"BLOCK_ROWS": 32, "BLOCK_COLS": 128, "num_warps": 8, "TRANSPOSE_TILE": True},
    {"BLOCK_ROWS": 64, "BLOCK_COLS": 64, "num_warps": 8, "TRANSPOSE_TILE": True},
    {"BLOCK_ROWS": 16, "BLOCK_COLS": 256, "num_warps": 4, "TRANSPOSE_TILE": True},
)
_CHOSEN_LAUNCH: dict[tuple, dict[str, int | bool]] = {}


def softcapped_ce_forward(logits: Tensor, targets: Tensor, cap: float, kind: str) -> tuple[Tensor, Tensor]:
    """Per-row losses and log-sum-exps of the softcapped logits (Triton, CUDA only)."""
    assert logits.ndim == 2 and logits.stride(1) == 1, "logits must be (rows, vocab) with contiguous rows"
    rows, vocab = logits.shape
    losses = torch.empty(rows, device=logits.device, dtype=torch.float32)
    lse = torch.empty_like(losses)
    _softcapped_ce_forward[(rows,)](
        logits, targets, losses, lse, logits.stride(0), vocab, cap, KIND=SOFTCAP_KINDS[kind], **CE_LAUNCH
    )
    return losses, lse


def softcapped_ce_backward(
    logits: Tensor,
    targets: Tensor,
    lse: Tensor,
    grad_losses: Tensor,
    cap: float,
    kind: str,
    out: Tensor,
    out_scale: float = 1.0,
) -> Tensor:
    """Writes the gradient of the per-row losses w.r.t. the logits, times `out_scale`, into `out` (which may be
    `logits` itself). `grad_losses` holds one upstream gradient per row, or a single one for all rows."""
    rows, vocab = logits.shape
    assert out.shape == logits.shape and out.stride() == logits.stride()
    grad_losses = grad_losses.float().contiguous()
    stride = 0 if grad_losses.numel() == 1 else 1
    _softcapped_ce_backward[(rows,)](
        logits,
        targets,
        lse,
        grad_losses,
        stride,
        out,
        out_scale,
        logits.stride(0),
        vocab,
        cap,
        KIND=SOFTCAP_KINDS[kind],
        **CE_LAUNCH,
    )
    return out


def softcapped_ce_backward_both_layouts(
    logits: Tensor, targets: Tensor, lse: Tensor, cap: float, kind: str, dtype: torch.dtype, out_scale: float = 1.0
) -> tuple[Tensor, Tensor]:
    """The gradient of the per-row losses w.r.t. the logits (upstream gradient 1 per row) times `out_scale`, in
    `dtype`, as a (rows, vocab) tensor and as its transpose laid out (vocab, rows) row-major. Same values as
    `softcapped_ce_backward` with `grad_losses` of one; an FP8 matmul needs the contraction dimension contiguous
    in both operands, so the head's two backward matmuls need the gradient in both layouts."""
    assert logits.ndim == 2 and logits.stride(1) == 1, "logits must be (rows, vocab) with contiguous rows"
    rows, vocab = logits.shape
    out = torch.empty(rows, vocab, device=logits.device, dtype=dtype)
    out_t = torch.empty(vocab, rows, device=logits.device, dtype=dtype)
    run = functools.partial(launch_both_layouts, logits, targets, lse, cap, kind, out, out_t, out_scale)
    run(chosen_launch(("softcapped", rows, vocab, dtype, kind), run))
    return out, out_t


def launch_both_layouts(
    logits: Tensor,
    targets: Tensor,
    lse: Tensor,
    cap: float,
    kind: str,
    out: Tensor,
    out_t: Tensor,
    out_scale: float,
    launch: dict[str, int | bool],
) -> None:
    rows, vocab = logits.shape
    grid = (triton.cdiv(rows, int(launch["BLOCK_ROWS"])),)
    _softcapped_ce_backward_both_layouts[grid](
        logits,
        targets,
        lse,
        out,
        out_t,
        out_scale,
        rows,
        logits.stride(0),
        vocab,
        cap,
        KIND=SOFTCAP_KINDS[kind],
        **launch,
    )


def chosen_launch(key: tuple, run: Callable[[dict[str, int | bool]], None]) -> dict[str, int | bool]:
    """The launch settings of a two-layout kernel at `key` (the kernel and its shape): the fastest of
    CE_BOTH_LAYOUTS_CANDIDATES for `run`, timed the first time the key is asked for, then remembered."""
    if key not in _CHOSEN_LAUNCH:
        _CHOSEN_LAUNCH[key] = fastest_launch(run, CE_BOTH_LAYOUTS_CANDIDATES)
    return _CHOSEN_LAUNCH[key]


def fastest_launch(run: Callable[[dict[str, int | bool]], None], candidates: Sequence[dict[str, int | bool]]) -> dict:
    """The candidate launch settings under which `run` takes least time (median of repeated timed runs on the GPU,
    after a run that compiles it). The kernels compute the same values under every candidate, so the choice
    changes speed only; a candidate this GPU cannot launch (too many registers or too much shared memory) is
    passed over."""
    timings = []
    for launch in candidates:
        try:
            ms = triton.testing.do_bench(lambda launch=launch: run(launch), warmup=5, rep=20, return_mode="median")
        except triton.runtime.errors.OutOfResources:
            continue
        timings.append((ms, launch))
    return min(timings, key=lambda t: t[0])[1] if timings else candidates[0]


class _SoftcappedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, targets: Tensor, cap: float, kind: str) -> Tensor:  # type: ignore[override]
        losses, lse = softcapped_ce_forward(logits, targets, cap, kind)
        ctx.save_for_backward(logits, targets, lse)
        ctx.cap, ctx.kind = cap, kind
        return losses

    @staticmethod
    def backward(ctx, grad_losses: Tensor) -> tuple[Tensor, None, None, None]:  # type: ignore[override]
        logits, targets, lse = ctx.saved_tensors
        # the logits are not needed after this, so their memory holds the gradient
        softcapped_ce_backward(logits, targets, lse, grad_losses, ctx.cap, ctx.kind, out=logits)
        return logits, None, None, None


def triton_available(device: torch.device) -> bool:
    return triton is not None and device.type == "cuda"


def softcapped_cross_entropy(logits: Tensor, targets: Tensor, cap: float, kind: str) -> Tensor:
    """Mean cross-entropy of softcapped logits. Fused Triton kernel on CUDA; the reference elsewhere.

    On CUDA the logits' memory is reused for their gradient: do not read `logits` after backward.
    """
    if kind not in SOFTCAP_KINDS:
        raise ValueError(f"unknown softcap kind {kind!r}")
    if not triton_available(logits.device):
        return softcapped_cross_entropy_reference(logits, targets, cap, kind)
    return _SoftcappedCrossEntropy.apply(logits.contiguous(), targets.contiguous(), cap, kind).mean()
