"""NorMuon with Polar Express and cautious weight decay: the optimiser of the hidden matrices in the 2026-05
recipe (record 84).

One step of a matrix W with gradient G (each idea its own function below):
1. Nesterov momentum, in fp32: M <- lerp(M, G, 1 - mu); U <- lerp(G, M, mu).
2. Polar Express (record 38): U is replaced by an approximately orthogonal matrix with its singular vectors,
   five quintic iterations with coefficients chosen per iteration (Amsel et al., 2025).
3. NorMuon (record 41): each row (or column, for wide matrices) of U is divided by the square root of a running
   mean of its squared entries, then U is rescaled to its Frobenius norm before this step.
4. Cautious weight decay tied to the learning rate (record 43): W <- W - lr * U - lr * wd * base_lr * W, the
   decay applied only where U and W have the same sign.
The learning rate is scaled by max(1, rows / cols) ** 0.5 and by a per-matrix factor (record 84 doubles it for
the MLP's output matrices).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

# (a, b, c) per iteration of X <- a X + (b A + c A^2) X, A = X X^T: record 84's coefficients, computed for five
# iterations with a safety factor of 0.02 and a cushion of 2
POLAR_EXPRESS = (
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
)
SAFETY = 1.02  # the Frobenius norm is inflated by this, so that the spectral norm is surely below 1


def nesterov_momentum_(grad: Tensor, buffer: Tensor, momentum: float) -> Tensor:
    """Update the momentum buffer in place and return the Nesterov direction (written into `grad`)."""
    buffer.lerp_(grad, 1 - momentum)
    return grad.lerp_(buffer, momentum)


def polar_express(G: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """Approximately orthogonalise G (or a stack of matrices, over the last two dims): U S V^T -> U S' V^T, S'
    near 1. Runs in bf16 on CUDA (as the record does) and fp32 elsewhere, unless `dtype` is given."""
    X = G.to(dtype or (torch.bfloat16 if G.is_cuda else torch.float32))
    tall = X.size(-2) > X.size(-1)
    X = X / (X.norm(dim=(-2, -1), keepdim=True) * SAFETY + 1e-6)
    batch_shape = X.shape[:-2]
    X = X.reshape(-1, *X.shape[-2:])
    for a, b, c in POLAR_EXPRESS:
        # the smaller Gram matrix: X^T X for a tall X (multiplied on the right), X X^T otherwise (on the left)
        A = X.mT @ X if tall else X @ X.mT
        B = torch.baddbmm(A, A, A, beta=b, alpha=c)  # b A + c A^2, one rounding
        X = torch.baddbmm(X, X, B, beta=a) if tall else torch.baddbmm(X, B, X, beta=a)  # a X + X B or a X + B X
    return X.reshape(*batch_shape, *X.shape[-2:])


def reduced_dim(shape: Sequence[int]) -> int:
    """The dimension NorMuon averages over: the columns of a tall or square matrix (one statistic per row),
    the rows of a wide one (one per column)."""
    return -1 if shape[-2] >= shape[-1] else -2


def normuon_normalize_(update: Tensor, second_moment: Tensor, beta2: float) -> Tensor:
    """Divide each row (or column) of `update` by the root of a running mean of its mean square, then restore
    each matrix's Frobenius norm. `second_moment` (fp32, the reduced dimension kept as 1) is updated in place."""
    dim = reduced_dim(update.shape)
    mean_square = update.float().square().mean(dim=dim, keepdim=True)
    second_moment.lerp_(mean_square, 1 - beta2)
    scale = second_moment.clamp_min(1e-10).rsqrt()
    norm_before = mean_square.sum(dim=(-2, -1), keepdim=True).sqrt()
    norm_after = (mean_square * scale.square()).sum(dim=(-2, -1), keepdim=True).sqrt()
    return update.mul_((scale * norm_before / norm_after.clamp_min(1e-10)).type_as(update))


def cautious_update_(weight: Tensor, update: Tensor, lr: Tensor | float, decay: Tensor | float) -> None:
    """W <- W - lr * U - decay * lr * W, the decay only where U and W have the same sign (or either is 0)."""
    same_sign = (update * weight) >= 0
    weight.copy_(weight - weight * same_sign * decay * lr - update * lr)


def shape_factor(shape: Sequence[int]) -> float:
    """max(1, rows / cols) ** 0.5: tall matrices take larger steps, to keep the update's RMS comparable."""
    return max(1.0, shape[-2] / shape[-1]) ** 0.5


class NorMuon(torch.optim.Optimizer):
    """NorMuon for parameters made of matrices (2-D, or stacks of 2-D over leading dims). Each group holds
    parameters whose matrices share a shape; with several processes, each steps a share of a group's parameters
    and broadcasts them (their momentum and second moment live on that process). Gradients must already be
    summed across processes."""

    def __init__(
        self,
        param_groups: Iterable[dict],
        lr: float,
        momentum: float,
        beta2: float,
        weight_decay: float,
        rank: int = 0,
        world_size: int = 1,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.rank, self.world_size = rank, world_size
        self.dtype = dtype  # of the orthogonalisation: None for bf16 on CUDA, fp32 elsewhere
        defaults = dict(lr=lr, momentum=momentum, beta2=beta2, weight_decay=weight_decay, lr_factor=1.0)
        super().__init__(param_groups, defaults)
        for group in self.param_groups:
            shapes = {tuple(p.shape[-2:]) for p in group["params"]}
            if len(shapes) != 1:
                raise ValueError(f"a NorMuon group needs matrices of one shape, got {sorted(shapes)}")

    def _direction(self, p: nn.Parameter, group: dict) -> Tensor:
        """Momentum, orthogonalisation and normalisation of one parameter's gradient."""
        state = self.state[p]
        grad = p.grad.float() if p.grad is not None else torch.zeros_like(p, dtype=torch.float32)
        if not state:
            state["momentum_buffer"] = torch.zeros_like(grad)
            reduced = list(grad.shape)
            reduced[reduced_dim(grad.shape)] = 1
            state["second_moment"] = grad.new_zeros(reduced)
        momentum = float(torch.tensor(group["momentum"], dtype=torch.float32))  # as the record rounds it
        direction = nesterov_momentum_(grad, state["momentum_buffer"], momentum)
        return normuon_normalize_(polar_express(direction, self.dtype), state["second_moment"], group["beta2"])

    @torch.no_grad()
    def step(self) -> None:  # type: ignore[override]
        W, rank = self.world_size, self.rank
        for group in self.param_groups:
            params: list[nn.Parameter] = group["params"]
            lr = group["lr"] * group["lr_factor"] * shape_factor(params[0].shape)
            decay = group["weight_decay"] * group["lr"]  # tied to the scheduled base learning rate
            share = -(-len(params) // W)
            for i, p in enumerate(params):
                if W > 1 and i // share != rank:
                    continue
                direction = self._direction(p, group).to(p.dtype)
                matrix_factors = group.get("matrix_lr_factors")
                if matrix_factors is None:
                    cautious_update_(p.data, direction, lr, decay)
                else:  # a stack whose matrices take different learning rates
                    for k, extra in enumerate(matrix_factors):
                        cautious_update_(p.data[k], direction[k], lr * extra, decay)
            if W > 1:
                for i, p in enumerate(params):
                    dist.broadcast(p.data, src=min(i // share, W - 1))
