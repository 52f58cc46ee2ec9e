"""The MLP of the 2026-05 recipe: relu(x W1^T)^2 W2, its first matmul in FP8 in the forward pass on Hopper
(record 84). Both matrices are stored (hidden, model_dim), the output one as `h @ W2` reads it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

E4M3_MAX = 448.0  # the largest float8 e4m3 value


def quantize_e4m3(t: Tensor) -> tuple[Tensor, Tensor]:
    """t as float8 e4m3 scaled so its largest magnitude is 448, and the scale that undoes it (amax / 448)."""
    amax = t.detach().abs().amax().float().clamp_min(1e-12)
    return (t.detach().float() * (E4M3_MAX / amax)).to(torch.float8_e4m3fn), amax / E4M3_MAX


class Fp8UpProjection(torch.autograd.Function):
    """x @ w.T with both operands in float8 e4m3 (one scale per tensor, from its largest magnitude) in the
    forward pass; the backward pass uses the bf16 operands, as record 84's kernel does.

    On CUDA the product is `torch._scaled_mm` (not yet run on a GPU); elsewhere the quantised operands are
    multiplied in fp32, the same arithmetic up to the order of the sums."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor) -> Tensor:  # type: ignore[override]
        x8, x_scale = quantize_e4m3(x)
        w8, w_scale = quantize_e4m3(w)
        ctx.save_for_backward(x, w)
        if x.is_cuda:
            return torch._scaled_mm(x8, w8.t(), scale_a=x_scale, scale_b=w_scale, out_dtype=x.dtype)
        return ((x8.float() @ w8.float().t()) * (x_scale * w_scale)).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        x, w = ctx.saved_tensors
        return grad @ w.type_as(grad), (grad.t() @ x.type_as(grad)).to(w.dtype)


class MLP(nn.Module):
    def __init__(self, model_dim: int, hidden: int) -> None:
        super().__init__()
        bound = 3**0.5 * 0.5 * model_dim**-0.5
        self.fc = nn.Parameter(torch.empty(hidden, model_dim).uniform_(-bound, bound))
        self.proj = nn.Parameter(torch.zeros(hidden, model_dim))  # zero: each layer starts as the identity

    def forward(self, x: Tensor, fp8: bool = False) -> Tensor:
        pre = Fp8UpProjection.apply(x, self.fc) if fp8 else F.linear(x, self.fc.type_as(x))
        return F.relu(pre).square() @ self.proj.type_as(x)
