"""Newton-Schulz, Muon and the schedules."""

from __future__ import annotations

import itertools

import pytest
import torch

from speedrun.trainer.config import NS_STEEP, NS_TUNED_PER_ITERATION, get_config
from speedrun.trainer.optim import Muon, newton_schulz
from speedrun.trainer.schedule import lr_multiplier, muon_momentum, window_blocks

# the quintic a*x + b*x^3 + c*x^5 peaks at 1.2024 on [0, 1]: singular values may land anywhere up to it
QUINTIC_PEAK = 1.2025


@pytest.mark.parametrize("shape", [(256, 1024), (1024, 256), (3, 96, 384), (384, 768), (64, 64)])
@pytest.mark.parametrize(
    ("coefficients", "lowest"), [(NS_STEEP, 0.6), (NS_TUNED_PER_ITERATION, 0.95)], ids=["steep", "tuned"]
)
def test_newton_schulz_maps_singular_values_near_one(
    shape: tuple[int, ...], coefficients: tuple[tuple[float, float, float], ...], lowest: float
) -> None:
    """Both coefficient sets lift every singular value towards 1; the medium record's per-iteration tuples end
    with iterations that converge, so they land much closer to it than the small records' single steep one."""
    torch.manual_seed(0)
    G = torch.randn(shape, dtype=torch.float64)
    if len(shape) == 2 and shape[0] == shape[1]:
        # square Gaussian matrices have singular values near 0 that 5 steps cannot lift; use a
        # moderately conditioned square matrix instead (singular values spread over two decades)
        u, _, vt = torch.linalg.svd(G)
        G = u @ torch.diag(torch.logspace(0, -2, shape[0], dtype=torch.float64)) @ vt
    X = newton_schulz(G, coefficients)
    assert X.shape == G.shape
    singular_values = torch.linalg.svdvals(X.double())
    assert singular_values.min() > lowest
    assert singular_values.max() < QUINTIC_PEAK


def test_newton_schulz_keeps_the_singular_vectors() -> None:
    torch.manual_seed(1)
    G = torch.randn(128, 512, dtype=torch.float64)
    u, _, vt = torch.linalg.svd(G, full_matrices=False)
    X = newton_schulz(G).double()
    # X = U S' V^T with S' diagonal: U^T X V is diagonal
    core = u.T @ X @ vt.T
    off_diagonal = core - torch.diag(torch.diagonal(core))
    assert off_diagonal.abs().max() < 1e-3


def _reference_muon_step(p: torch.Tensor, grad: torch.Tensor, buffer: torch.Tensor, lr: float, m: float) -> None:
    buffer.lerp_(grad, 1 - m)
    update = newton_schulz(grad.lerp(buffer, m))
    p.add_(update * max(1.0, p.size(-2) / p.size(-1)) ** 0.5, alpha=-lr)


def test_batched_muon_equals_one_matrix_at_a_time() -> None:
    torch.manual_seed(2)
    params = [torch.nn.Parameter(torch.randn(64, 32)) for _ in range(3)] + [torch.nn.Parameter(torch.randn(32, 64))]
    copies = [p.detach().clone() for p in params]
    buffers = [torch.zeros_like(p) for p in params]
    opt = Muon([dict(params=params)], lr=0.05, momentum=0.9)
    for _ in range(3):
        grads = [torch.randn_like(p) for p in params]
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        opt.step()
        for c, g, b in zip(copies, grads, buffers, strict=True):
            _reference_muon_step(c, g, b, lr=0.05, m=0.9)
    for p, c in zip(params, copies, strict=True):
        torch.testing.assert_close(p.detach(), c, rtol=1e-5, atol=1e-5)


def test_learning_rate_is_stable_then_decays() -> None:
    config = get_config("small")
    n = config.num_iterations
    assert lr_multiplier(0, config) == 1.0
    assert lr_multiplier(int(n * (1 - config.schedule.cooldown_frac)) - 1, config) == 1.0
    assert lr_multiplier(n, config) == pytest.approx(config.schedule.final_lr_fraction)
    values = [lr_multiplier(s, config) for s in range(n + 1)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    medium = get_config("medium")
    assert lr_multiplier(medium.num_iterations, medium) == 0.0


def test_momentum_warms_up_and_window_grows() -> None:
    config = get_config("small")
    assert muon_momentum(0, config) == pytest.approx(0.85)
    assert muon_momentum(config.optim.muon.momentum_warmup_steps, config) == pytest.approx(0.95)
    windows = [window_blocks(s, config) for s in range(config.num_iterations + 1)]
    assert windows[0] == 1 and windows[-1] == 1792 // 128
    assert all(a <= b for a, b in itertools.pairwise(windows))
    medium = get_config("medium")
    assert window_blocks(medium.num_iterations, medium) == 27  # 3456 tokens


def test_window_is_the_records_next_multiple_of_128() -> None:
    """Record 28 sizes its window as the smallest multiple of 128 (at least 128) at or above 1728 * x, x the
    fraction of training done: written out here by enumeration, it must agree with ours on every step."""
    for config in (get_config("small"), get_config("medium")):
        n = config.num_iterations
        for step in range(n + 1):
            x = step / n
            growth = x if config.schedule.window_schedule == "linear" else 4 * x**3 - 6 * x**2 + 3 * x
            tokens = config.schedule.window_tokens * growth
            record = next(m for m in range(128, int(tokens) + 1 + 128, 128) if m >= tokens) // 128
            assert window_blocks(step, config) == record, (config.track, step)
