"""The head and the loss of the 2026-05 recipe: logits rescaled asymmetrically (record 54) and a weighted
cross-entropy on the next few tokens (multi-token prediction, record 53), the head's matmul in FP8 on Hopper.

The loss of position i is sum_k w_k * (logsumexp(z_i) - z_i[target_{i+k}]) over the k with i + k inside the
batch, z = a * sigmoid((logits + b) / c): one softmax serves every predicted token. Record 84 fuses the
rescale, the loss and its gradient in one CUDA kernel (records 60, 79). Ours, with the FP8 head (Hopper):
two Triton kernels (`mtp_kernels`), one pass over the bf16 logits each, the second writing the gradient
straight into FP8 (`Fp8HeadMtpLoss`). Elsewhere the same arithmetic is a PyTorch function that computes the
gradient in the forward pass, slice by slice, compiled on a GPU (`MtpSoftcappedCrossEntropy`), and the
reference the kernels are tested against. One deliberate difference: for the last one or two rows of a
micro-batch, whose loss leaves out the tokens past its end, record 84's kernel still takes the gradient with
every weight; ours takes the gradient of the loss it reports.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from speedrun.trainer.mtp_kernels import KEEP_SIGMOID, TANH_SIGMOID, mtp_backward_both_layouts, mtp_forward

SLICE_ROWS = 8192  # rows of logits at a time: every micro-batch of the recipe is a multiple of it


def rescale(logits: Tensor, a: float, b: float, c: float) -> tuple[Tensor, Tensor]:
    """z = a * sigmoid((logits + b) / c), and sigmoid itself (rounded to bf16, as the record's kernel keeps it)."""
    s = torch.sigmoid((logits.float() + b) / c).to(torch.bfloat16).float()
    return a * s, s


def mtp_losses_reference(
    logits: Tensor, targets: Tensor, weights: Sequence[float], abc: tuple[float, float, float]
) -> Tensor:
    """The definition, differentiable by autograd (tests): per-row losses of the rescaled logits."""
    a, b, c = abc
    z = a * torch.sigmoid((logits.float() + b) / c)
    lse = torch.logsumexp(z, dim=-1)
    losses = torch.zeros_like(lse)
    n = targets.numel()
    for k, w in enumerate(weights):
        rows = n - k
        losses[:rows] += w * (lse[:rows] - z[:rows].gather(1, targets[k:, None]).squeeze(1))
    return losses


def slice_losses_and_grad(
    logits: Tensor, targets_ahead: Tensor, row_weights: Tensor, abc: tuple[float, float, float]
) -> tuple[Tensor, Tensor]:
    """Losses and d loss / d logits of a slice of rows; targets_ahead[i, k] is row i's (k+1)-th next token and
    row_weights[i, k] its weight (zero past the batch). Written as one reduction and elementwise work (the
    one-hot term by comparing each column with the targets, no scatter), so that torch.compile fuses it into
    passes over the bf16 logits and never writes an fp32 copy of them."""
    a, b, c = abc
    z, s = rescale(logits, a, b, c)
    lse = torch.logsumexp(z, dim=-1)
    total = row_weights.sum(1)
    target_z = rescale(logits.gather(1, targets_ahead), a, b, c)[0]
    losses = total * lse - (row_weights * target_z).sum(1)
    # d loss / d z = (sum of the row's weights) * softmax(z) - sum_k w_k onehot(target_{i+k})
    columns = torch.arange(logits.size(1), device=logits.device)
    onehot = sum(row_weights[:, k, None] * (columns == targets_ahead[:, k, None]) for k in range(row_weights.size(1)))
    dz = total[:, None] * torch.exp(z - lse[:, None]) - onehot
    return losses, (dz * (a / c) * s * (1 - s)).to(logits.dtype)


# the sigmoid rounded to bf16 as eager PyTorch (and record 84's kernel) rounds it, not kept in fp32 inside the
# fused kernel: that rounding moves a loss by up to 23 * 2**-9
COMPILE_OPTIONS = {"emulate_precision_casts": True}


def scale_rows(grad: Tensor, row_scales: Tensor) -> Tensor:
    """grad * row_scales[:, None] in grad's dtype."""
    return grad * row_scales[:, None].to(grad.dtype)


@functools.cache
def _compiled(function: Callable[..., Any], precise: bool = False) -> Callable[..., Any]:
    return torch.compile(function, dynamic=False, options=COMPILE_OPTIONS if precise else None)


def compiled_on_gpu(function: Callable[..., Any], device: torch.device, precise: bool = False) -> Callable[..., Any]:
    """`function` compiled on a GPU, once per function (a few shapes: one per batch stage), eager elsewhere.
    Eager, these passes over the logits or their gradient (a GiB or more per micro-batch) run as several
    kernels each, some unvectorised (a broadcast, a transpose of 1-byte floats); compiled, as one or two."""
    return _compiled(function, precise) if device.type == "cuda" else function


def multi_token_targets(targets: Tensor, weights: Sequence[float]) -> tuple[Tensor, Tensor]:
    """(targets_ahead, row_weights), each (rows, K): row i's (k+1)-th next token and its weight, the weight zero
    where i + k falls past the batch (the token there is a stand-in: the last target)."""
    n = targets.numel()
    rows = torch.arange(n, device=targets.device)
    row_weights = torch.stack([w * (rows + k < n).float() for k, w in enumerate(weights)], dim=1)
    targets_ahead = torch.stack([targets[torch.clamp_max(rows + k, n - 1)] for k in range(len(weights))], dim=1)
    return targets_ahead.contiguous(), row_weights.contiguous()


class MtpSoftcappedCrossEntropy(torch.autograd.Function):
    """Per-row multi-token losses of bf16 logits; the gradient is computed with the losses and kept in bf16.
    The weights come as Python numbers: reading them from a GPU tensor would stop the host until the GPU caught
    up, once per micro-batch, and leave the GPU idle while the host queued the rest of the step."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, logits: Tensor, targets: Tensor, weights: Sequence[float], abc: tuple[float, float, float]
    ) -> Tensor:
        n = logits.size(0)
        compute = compiled_on_gpu(slice_losses_and_grad, logits.device, precise=True)
        targets_ahead, row_weights = multi_token_targets(targets, weights)
        losses = torch.empty(n, dtype=torch.float32, device=logits.device)
        grad = torch.empty_like(logits)
        for start in range(0, n, SLICE_ROWS):
            part = slice(start, min(start + SLICE_ROWS, n))
            losses[part], grad[part] = compute(logits[part], targets_ahead[part], row_weights[part], abc)
        ctx.save_for_backward(grad)
        return losses

    @staticmethod
    def backward(ctx, grad_losses: Tensor) -> tuple[Tensor, None, None, None]:  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return compiled_on_gpu(scale_rows, grad.device)(grad, grad_losses), None, None, None


def eval_losses(logits: Tensor, targets: Tensor, abc: tuple[float, float, float]) -> Tensor:
    """Per-token next-token losses in evaluation: the rescale in the logits' dtype (bf16 on a GPU), the
    cross-entropy in fp32, as record 84 evaluates."""
    a, b, c = abc
    z = a * torch.sigmoid((logits + b) / c)
    return torch.nn.functional.cross_entropy(z.float(), targets, reduction="none")


def mtp_softcapped_cross_entropy(
    logits: Tensor, targets: Tensor, weights: Sequence[float], abc: tuple[float, float, float]
) -> Tensor:
    return MtpSoftcappedCrossEntropy.apply(logits, targets, weights, abc)


class Fp8HeadMtpLoss(torch.autograd.Function):
    """The head's matmul in FP8 and the multi-token loss of its logits, as record 84's head computes them
    (CUDA, with the Triton kernels of `mtp_kernels`). Forward: x / x_s and w / w_s in e4m3, bf16 logits (w
    stored (in, out)), the per-row losses. Backward: the loss kernel writes the logits' gradient, times each
    row's upstream gradient and over grad_s, in e5m2, row-major for x's gradient and transposed for w's, so no
    bf16 gradient of the logits is ever written. With `mtp_kernels.KEEP_SIGMOID` the forward kernel leaves each
    logit's sigmoid in its place and the backward kernel starts from those."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        x: Tensor,
        w: Tensor,
        targets: Tensor,
        weights: Sequence[float],
        abc: tuple[float, float, float],
        scales: tuple[float, float, float],
    ) -> Tensor:
        x_s, w_s, _ = scales
        x8 = (x / x_s).to(torch.float8_e4m3fn)
        w8 = (w / w_s).to(torch.float8_e4m3fn)
        logits = _scaled_matmul(x8, w8, x_s, w_s, torch.bfloat16)
        targets_ahead, row_weights = multi_token_targets(targets, weights)
        losses, lse = mtp_forward(logits, targets_ahead, row_weights, abc, keep_sigmoid=KEEP_SIGMOID, tanh=TANH_SIGMOID)
        ctx.save_for_backward(x8, w8, logits, targets_ahead, row_weights, lse)  # logits, or their sigmoids
        ctx.abc, ctx.scales = abc, scales
        return losses

    @staticmethod
    def backward(ctx, grad_losses: Tensor) -> tuple[Tensor, Tensor, None, None, None, None]:  # type: ignore[override]
        x8, w8, logits, targets_ahead, row_weights, lse = ctx.saved_tensors
        x_s, w_s, grad_s = ctx.scales
        g8, g8_t = mtp_backward_both_layouts(
            logits, targets_ahead, row_weights, lse, grad_losses, ctx.abc, torch.float8_e5m2, 1 / grad_s,
            is_sigmoid=KEEP_SIGMOID, tanh=TANH_SIGMOID,
        )  # fmt: skip
        grad_x = _scaled_matmul(g8, w8.t(), grad_s, w_s, torch.bfloat16)
        grad_w = _scaled_matmul(x8.t(), g8_t.t(), x_s, grad_s, torch.float32)
        return grad_x, grad_w, None, None, None, None


def _scaled_matmul(a: Tensor, b: Tensor, a_scale: float, b_scale: float, out_dtype: torch.dtype) -> Tensor:
    """(a * a_scale) @ (b * b_scale) for float8 a and b, on CUDA."""
    one = torch.ones((), device=a.device, dtype=torch.float32)
    # _scaled_mm wants a row-major and b column-major (copies only where they are not)
    return torch._scaled_mm(
        a.contiguous(), b.t().contiguous().t(), scale_a=one * a_scale, scale_b=one * b_scale, out_dtype=out_dtype
    )
