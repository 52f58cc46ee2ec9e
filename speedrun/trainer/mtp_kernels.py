"""Triton kernels of the 2026-05 head's loss: the multi-token cross-entropy of rescaled logits
(`layers/head.py`), forward and backward, each pass over the bf16 logits made once.

Row i's loss is sum_k w[i, k] * (logsumexp(z_i) - z_i[t[i, k]]) with z = a * sigmoid((logits + b) / c), the
sigmoid rounded to bf16 as the record keeps it. The forward kernel reads each row once and writes its loss and
log-sum-exp, and (KEEP_SIGMOID) each logit's sigmoid in its place; the backward kernel reads those once more and
writes the gradient, times each row's upstream gradient, in float8 e5m2, row-major and transposed: the two
layouts the FP8 head's two backward matmuls need. Record 84 does the same in one CUDA kernel that keeps a row's
sigmoids in shared memory and writes the gradient in the forward pass; ours waits for the upstream gradient, so
that the gradient is that of the losses as the caller uses them, and so keeps the sigmoids in memory between
the passes.

CUDA and Triton only: the PyTorch path of `layers/head.py` is the reference these kernels are tested against.
"""

from __future__ import annotations

import torch
from torch import Tensor

from speedrun.trainer.kernels import CE_LAUNCH, chosen_launch, tl, triton

if triton is not None:
    from speedrun.trainer.kernels import store_both_layouts

    @triton.jit
    def _sigmoid(u, TANH: tl.constexpr):
        """sigmoid(u): Triton's (an exponential and a division), or as record 84's kernel computes it,
        0.5 + 0.5 * tanh(u / 2) with the GPU's one-instruction approximate tanh."""
        if TANH:
            t = tl.inline_asm_elementwise(
                "tanh.approx.f32 $0, $1;", "=r,r", [u * 0.5], dtype=tl.float32, is_pure=True, pack=1
            )
            return 0.5 + 0.5 * t
        else:
            return tl.sigmoid(u)

    @triton.jit
    def _rescaled(x, a, inv_c, b_over_c, TANH: tl.constexpr):
        """z = a * sigmoid((x + b) / c) and the sigmoid, rounded to bf16; (x + b) / c as one multiply-add, as
        record 84's kernel computes it."""
        s = _sigmoid(x * inv_c + b_over_c, TANH).to(tl.bfloat16).to(tl.float32)
        return a * s, s

    @triton.jit
    def _rescaled_input(x, a, inv_c, b_over_c, IS_SIGMOID: tl.constexpr, TANH: tl.constexpr):
        """`_rescaled` of a logit, or of the sigmoid the forward kernel wrote in its place."""
        if IS_SIGMOID:
            return a * x, x
        else:
            return _rescaled(x, a, inv_c, b_over_c, TANH)

    @triton.jit
    def _mtp_forward(
        logits_ptr,
        targets_ptr,
        weights_ptr,
        losses_ptr,
        lse_ptr,
        row_stride,
        vocab_size,
        a,
        inv_c,
        b_over_c,
        shift,
        K: tl.constexpr,
        BLOCK: tl.constexpr,
        KEEP_SIGMOID: tl.constexpr,
        TANH: tl.constexpr,
    ):
        """Each row's loss and log-sum-exp; with KEEP_SIGMOID the row's bf16 sigmoids are written over its
        logits, so that the backward kernel need not compute them again."""
        row = tl.program_id(0).to(tl.int64)
        row_ptr = logits_ptr + row * row_stride
        # the targets' values first: with KEEP_SIGMOID the loop below overwrites their logits
        weight_sum = 0.0
        weighted_target_z = 0.0
        for k in tl.static_range(K):
            weight = tl.load(weights_ptr + row * K + k)
            target = tl.load(targets_ptr + row * K + k).to(tl.int64)
            target_z, _ = _rescaled(tl.load(row_ptr + target).to(tl.float32), a, inv_c, b_over_c, TANH)
            weight_sum += weight
            weighted_target_z += weight * target_z
        # z lies between 0 and a, so exp(z - shift) with shift = max(a, 0) neither overflows nor underflows:
        # no running maximum is needed
        total = tl.zeros([BLOCK], tl.float32)
        for start in range(0, vocab_size, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            x = tl.load(row_ptr + cols, mask=cols < vocab_size, other=0.0).to(tl.float32)
            z, s = _rescaled(x, a, inv_c, b_over_c, TANH)
            total += tl.where(cols < vocab_size, tl.exp(z - shift), 0.0)
            if KEEP_SIGMOID:
                tl.store(row_ptr + cols, s.to(logits_ptr.dtype.element_ty), mask=cols < vocab_size)
        lse = shift + tl.log(tl.sum(total, axis=0))
        tl.store(losses_ptr + row, weight_sum * lse - weighted_target_z)
        tl.store(lse_ptr + row, lse)

    @triton.jit
    def _mtp_backward_both_layouts(
        logits_ptr,
        targets_ptr,
        weights_ptr,
        lse_ptr,
        grad_losses_ptr,
        out_ptr,
        out_t_ptr,
        out_scale,
        rows,
        row_stride,
        vocab_size,
        a,
        inv_c,
        b_over_c,
        K: tl.constexpr,
        BLOCK_ROWS: tl.constexpr,
        BLOCK_COLS: tl.constexpr,
        TRANSPOSE_TILE: tl.constexpr,
        IS_SIGMOID: tl.constexpr,
        TANH: tl.constexpr,
    ):
        """out = d loss / d logits * grad_losses[row] * out_scale, with
        d loss / d z = (sum_k w_k) * softmax(z) - sum_k w_k onehot(t_k) and dz / dlogit = (a / c) * s * (1 - s),
        written as `kernels._softcapped_ce_backward_both_layouts` writes its gradient (a band of rows per
        program, each tile stored row-major and transposed). The tiles hold the softmax term alone; the K
        target columns of each row are written again afterwards with the one-hot terms, so that no logit is
        compared with the targets."""
        row_ids = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
        row_inside = row_ids < rows
        row_offsets = row_ids.to(tl.int64) * row_stride
        lse = tl.load(lse_ptr + row_ids, mask=row_inside, other=0.0)
        scale = tl.load(grad_losses_ptr + row_ids, mask=row_inside, other=0.0).to(tl.float32) * out_scale
        entries = row_ids.to(tl.int64) * K
        weight_sum = tl.zeros([BLOCK_ROWS], tl.float32)
        for k in tl.static_range(K):
            weight_sum += tl.load(weights_ptr + entries + k, mask=row_inside, other=0.0)
        slope = scale * a * inv_c
        for start in range(0, vocab_size, BLOCK_COLS):
            cols = start + tl.arange(0, BLOCK_COLS)
            inside = row_inside[:, None] & (cols[None, :] < vocab_size)
            x = tl.load(logits_ptr + row_offsets[:, None] + cols[None, :], mask=inside, other=0.0).to(tl.float32)
            z, s = _rescaled_input(x, a, inv_c, b_over_c, IS_SIGMOID, TANH)
            dz = weight_sum[:, None] * tl.exp(z - lse[:, None])
            store_both_layouts(
                out_ptr, out_t_ptr, dz * s * (1.0 - s) * slope[:, None], row_ids, row_offsets, cols, inside, rows,
                TRANSPOSE_TILE,
            )  # fmt: skip
        # the target columns, after every thread's tile stores (a barrier orders a block's global writes)
        tl.debug_barrier()
        for k in tl.static_range(K):
            target = tl.load(targets_ptr + entries + k, mask=row_inside, other=0).to(tl.int64)
            hit = tl.zeros([BLOCK_ROWS], tl.float32)  # the weights of every k' that predicts this same token
            for j in tl.static_range(K):
                same = tl.load(targets_ptr + entries + j, mask=row_inside, other=0).to(tl.int64) == target
                hit += tl.where(same, tl.load(weights_ptr + entries + j, mask=row_inside, other=0.0), 0.0)
            x = tl.load(logits_ptr + row_offsets + target, mask=row_inside, other=0.0).to(tl.float32)
            z, s = _rescaled_input(x, a, inv_c, b_over_c, IS_SIGMOID, TANH)
            dz = weight_sum * tl.exp(z - lse) - hit
            grad = (dz * s * (1.0 - s) * slope).to(out_ptr.dtype.element_ty)
            tl.store(out_ptr + row_offsets + target, grad, mask=row_inside)
            tl.store(out_t_ptr + target * rows + row_ids, grad, mask=row_inside)


# How the head's loss kernels compute the sigmoid: record 84's tanh form, and once per logit (the forward kernel
# writes it over the logits, which the backward kernel then reads), as record 84's kernel keeps it in shared memory.
TANH_SIGMOID = True
KEEP_SIGMOID = True


def mtp_forward(
    logits: Tensor,
    targets_ahead: Tensor,
    row_weights: Tensor,
    abc: tuple[float, float, float],
    *,
    keep_sigmoid: bool = False,
    tanh: bool = False,
) -> tuple[Tensor, Tensor]:
    """Per-row losses and log-sum-exps of the rescaled logits. targets_ahead[i, k]: row i's (k+1)-th next
    token; row_weights[i, k]: its weight (zero where it falls past the batch). `keep_sigmoid`: overwrite the
    logits in place with their bf16 sigmoids, for `mtp_backward_both_layouts(..., is_sigmoid=True)`.
    `tanh`: the sigmoid as 0.5 + 0.5 * tanh(u / 2) with the GPU's approximate tanh (CUDA only)."""
    assert logits.ndim == 2 and logits.stride(1) == 1, "logits must be (rows, vocab) with contiguous rows"
    assert not keep_sigmoid or logits.dtype == torch.bfloat16, "the kept sigmoid is bf16, as the logits must be"
    rows, vocab = logits.shape
    K = _check_targets(targets_ahead, row_weights, rows)
    losses = torch.empty(rows, device=logits.device, dtype=torch.float32)
    lse = torch.empty_like(losses)
    a, b, c = abc
    _mtp_forward[(rows,)](
        logits, targets_ahead, row_weights, losses, lse, logits.stride(0), vocab, a, 1 / c, b / c, max(a, 0.0), K=K,
        KEEP_SIGMOID=keep_sigmoid, TANH=tanh, **CE_LAUNCH,
    )  # fmt: skip
    return losses, lse


def mtp_backward_both_layouts(
    logits: Tensor,
    targets_ahead: Tensor,
    row_weights: Tensor,
    lse: Tensor,
    grad_losses: Tensor,
    abc: tuple[float, float, float],
    dtype: torch.dtype,
    out_scale: float,
    launch: dict[str, int | bool] | None = None,
    *,
    is_sigmoid: bool = False,
    tanh: bool = False,
) -> tuple[Tensor, Tensor]:
    """The gradient of the losses `grad_losses` weighs (one upstream gradient per row) w.r.t. the logits, times
    `out_scale`, in `dtype`: as a (rows, vocab) tensor and as its transpose laid out (vocab, rows) row-major.
    `is_sigmoid`: `logits` holds the sigmoids `mtp_forward(..., keep_sigmoid=True)` wrote over them; `tanh` as
    there. `launch`: one of `kernels.CE_BOTH_LAYOUTS_CANDIDATES`, by default the fastest at this shape
    (`chosen_launch`)."""
    assert logits.ndim == 2 and logits.stride(1) == 1, "logits must be (rows, vocab) with contiguous rows"
    rows, vocab = logits.shape
    K = _check_targets(targets_ahead, row_weights, rows)
    grad_losses = grad_losses.float().contiguous()
    assert grad_losses.shape == (rows,)
    out = torch.empty(rows, vocab, device=logits.device, dtype=dtype)
    out_t = torch.empty(vocab, rows, device=logits.device, dtype=dtype)
    a, b, c = abc

    def run(launch: dict[str, int | bool]) -> None:
        grid = (triton.cdiv(rows, int(launch["BLOCK_ROWS"])),)
        _mtp_backward_both_layouts[grid](
            logits, targets_ahead, row_weights, lse, grad_losses, out, out_t, out_scale, rows, logits.stride(0),
            vocab, a, 1 / c, b / c, K=K, IS_SIGMOID=is_sigmoid, TANH=tanh, **launch,
        )  # fmt: skip

    run(launch or chosen_launch(("multi-token", rows, vocab, K, dtype, is_sigmoid, tanh), run))
    return out, out_t


def _check_targets(targets_ahead: Tensor, row_weights: Tensor, rows: int) -> int:
    K = targets_ahead.size(1)
    assert targets_ahead.shape == row_weights.shape == (rows, K)
    assert targets_ahead.is_contiguous() and row_weights.is_contiguous() and row_weights.dtype == torch.float32
    return K
