"""Triton kernels against their PyTorch references (GPU only), and the CPU fallbacks."""

from __future__ import annotations

import pytest
import torch

from speedrun.trainer.kernels import (
    CE_BOTH_LAYOUTS_CANDIDATES,
    launch_both_layouts,
    softcap,
    softcapped_ce_backward,
    softcapped_ce_backward_both_layouts,
    softcapped_ce_forward,
    softcapped_cross_entropy,
    softcapped_cross_entropy_reference,
)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("kind", ["tanh", "algebraic"])
def test_softcap_bounds_and_slope_at_zero(kind: str) -> None:
    x = torch.linspace(-1000, 1000, 2001, dtype=torch.float64, requires_grad=True)
    y = softcap(x, 15.0, kind)
    assert y.abs().max() <= 15.0  # reached only where tanh rounds to 1
    y.sum().backward()
    assert x.grad[1000].item() == pytest.approx(1.0)  # identity near zero


def test_cpu_falls_back_to_the_reference() -> None:
    logits = torch.randn(64, 300) * 20
    targets = torch.randint(0, 300, (64,))
    got = softcapped_cross_entropy(logits, targets, 15.0, "tanh")
    assert torch.equal(got, softcapped_cross_entropy_reference(logits, targets, 15.0, "tanh"))


@cuda
@pytest.mark.parametrize("kind", ["tanh", "algebraic"])
@pytest.mark.parametrize("rows, vocab", [(512, 50304), (300, 1000), (7, 5)])
def test_fused_cross_entropy_matches_reference(kind: str, rows: int, vocab: int) -> None:
    torch.manual_seed(0)
    base = (torch.randn(rows, vocab, device="cuda") * 30).bfloat16()
    targets = torch.randint(0, vocab, (rows,), device="cuda")

    ref_logits = base.clone().float().requires_grad_(True)
    ref = softcapped_cross_entropy_reference(ref_logits, targets, 15.0, kind)
    ref.backward()

    logits = base.clone().requires_grad_(True)
    got = softcapped_cross_entropy(logits, targets, 15.0, kind)
    got.backward()
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    # the gradient is stored in bf16: compare at bf16 precision, relative to the largest entry of a row
    scale = ref_logits.grad.abs().amax(dim=1, keepdim=True)
    assert ((logits.grad.float() - ref_logits.grad).abs() / scale).max() < 1e-2


@cuda
def test_fused_cross_entropy_scales_with_the_upstream_gradient() -> None:
    logits = (torch.randn(64, 4096, device="cuda") * 10).bfloat16().requires_grad_(True)
    targets = torch.randint(0, 4096, (64,), device="cuda")
    (3.0 * softcapped_cross_entropy(logits.clone(), targets, 15.0, "tanh")).backward()
    ref = logits.detach().float().requires_grad_(True)
    (3.0 * softcapped_cross_entropy_reference(ref, targets, 15.0, "tanh")).backward()
    torch.testing.assert_close(logits.grad.float(), ref.grad, rtol=2e-2, atol=1e-5)


@cuda
@pytest.mark.parametrize("kind", ["tanh", "algebraic"])
@pytest.mark.parametrize("dtype", [torch.float8_e5m2, torch.bfloat16])
@pytest.mark.parametrize("rows, vocab", [(512, 50304), (300, 1000), (7, 5)])
def test_two_layout_backward_matches_the_row_kernel_and_the_reference(
    kind: str, dtype: torch.dtype, rows: int, vocab: int
) -> None:
    torch.manual_seed(rows + vocab)
    logits = (torch.randn(rows, vocab, device="cuda") * 30).bfloat16()
    targets = torch.randint(0, vocab, (rows,), device="cuda")
    _, lse = softcapped_ce_forward(logits, targets, 15.0, kind)
    out_scale = 448.0 if dtype == torch.float8_e5m2 else 1.0

    got, got_t = softcapped_ce_backward_both_layouts(logits, targets, lse, 15.0, kind, dtype, out_scale=out_scale)
    assert got.shape == (rows, vocab) and got.is_contiguous()
    assert got_t.shape == (vocab, rows) and got_t.is_contiguous()
    # the same arithmetic as the row kernel, so the same bits, and the transpose holds the same values
    row_kernel = torch.full((rows, vocab), float("nan"), device="cuda").to(dtype)
    ones = torch.ones(1, device="cuda")
    softcapped_ce_backward(logits, targets, lse, ones, 15.0, kind, out=row_kernel, out_scale=out_scale)
    assert torch.equal(got.view(torch.uint8), row_kernel.view(torch.uint8))
    assert torch.equal(got_t.view(torch.uint8), got.t().contiguous().view(torch.uint8))

    # against autograd on the fp32 reference: d(sum of per-row losses)/d(logits), times out_scale
    ref_logits = logits.float().requires_grad_(True)
    torch.nn.functional.cross_entropy(softcap(ref_logits, 15.0, kind), targets, reduction="sum").backward()
    want = ref_logits.grad * out_scale
    if dtype == torch.float8_e5m2:
        # e5m2 keeps 2 mantissa bits (a rounding error of at most 1/8 of the value) and flushes what is under
        # its smallest subnormal, 2^-16, towards zero
        assert ((got.float() - want).abs() <= 0.13 * want.abs() + 2**-16).all()
    else:
        scale = want.abs().amax(dim=1, keepdim=True)
        assert ((got.float() - want).abs() / scale).max() < 1e-2


@cuda
@pytest.mark.parametrize("launch", CE_BOTH_LAYOUTS_CANDIDATES, ids=lambda launch: "-".join(map(str, launch.values())))
@pytest.mark.parametrize("dtype", [torch.float8_e5m2, torch.bfloat16])
def test_every_launch_candidate_writes_the_same_gradient(launch: dict[str, int | bool], dtype: torch.dtype) -> None:
    """The two-layout kernel picks its launch settings by speed on the GPU at hand, so each candidate must write
    the same bits as the row kernel, in both layouts, on a shape that is no multiple of any tile."""
    torch.manual_seed(1)
    rows, vocab = 1000, 5003
    logits = (torch.randn(rows, vocab, device="cuda") * 30).bfloat16()
    targets = torch.randint(0, vocab, (rows,), device="cuda")
    _, lse = softcapped_ce_forward(logits, targets, 15.0, "tanh")
    out = torch.full((rows, vocab), float("nan"), device="cuda").to(dtype)
    out_t = torch.full((vocab, rows), float("nan"), device="cuda").to(dtype)
    launch_both_layouts(logits, targets, lse, 15.0, "tanh", out, out_t, 448.0, launch)
    row_kernel = torch.full((rows, vocab), float("nan"), device="cuda").to(dtype)
    ones = torch.ones(1, device="cuda")
    softcapped_ce_backward(logits, targets, lse, ones, 15.0, "tanh", out=row_kernel, out_scale=448.0)
    bits = torch.uint8 if dtype == torch.float8_e5m2 else torch.int16
    assert torch.equal(out.view(bits), row_kernel.view(bits))
    assert torch.equal(out_t.view(bits), row_kernel.t().contiguous().view(bits))
