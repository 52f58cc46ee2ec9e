"""The Triton kernels of the 2026-05 head's multi-token loss (GPU only), against two outside references: our
PyTorch loss (itself tested against its definition and against record 84's model in test_model_2026.py) and
record 84's own CUDA kernel, compiled from its published log."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from speedrun.trainer.kernels import CE_BOTH_LAYOUTS_CANDIDATES
from speedrun.trainer.layers.head import (
    Fp8HeadMtpLoss,
    mtp_softcapped_cross_entropy,
    multi_token_targets,
    slice_losses_and_grad,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

ABC = (23.0, 5.0, 7.5)
GRAD_S = 0.75 / 448  # record 84's FP8 scale of the head's output gradient, before its 1/8 for accumulation


def batch(rows: int, vocab: int, weights: tuple[float, ...], seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator(device="cuda").manual_seed(seed)
    logits = (8 * torch.randn(rows, vocab, device="cuda", generator=generator)).bfloat16()
    targets = torch.randint(0, vocab, (rows,), device="cuda", generator=generator)
    targets[rows // 2 : rows // 2 + 4] = 1  # rows whose predicted tokens are one token, their one-hot terms summed
    return logits, targets, *multi_token_targets(targets, weights)


@pytest.mark.parametrize("weights", [(1.0, 0.5, 0.25), (1.0, 0.3), (1.0,)], ids=["k3", "k2", "k1"])
@pytest.mark.parametrize("rows, vocab", [(512, 50304), (300, 1000), (7, 5)])
def test_the_kernels_compute_what_our_pytorch_loss_does(rows: int, vocab: int, weights: tuple[float, ...]) -> None:
    from speedrun.trainer.mtp_kernels import mtp_backward_both_layouts, mtp_forward

    logits, _, targets_ahead, row_weights = batch(rows, vocab, weights)
    want_losses, want_grad = slice_losses_and_grad(logits, targets_ahead, row_weights, ABC)  # eager, on the GPU
    losses, lse = mtp_forward(logits, targets_ahead, row_weights, ABC)
    torch.testing.assert_close(losses, want_losses, rtol=1e-4, atol=1e-3)
    upstream = torch.rand(rows, device="cuda") + 0.5
    grad, grad_t = mtp_backward_both_layouts(logits, targets_ahead, row_weights, lse, upstream, ABC, torch.float32, 2.0)
    want = want_grad.float() * upstream[:, None] * 2.0
    # ours is rounded to bf16 once at the end, the kernel's is not: compare relative to each row's largest entry
    scale = want.abs().amax(dim=1, keepdim=True)
    assert ((grad - want).abs() / scale).max() < 1e-2
    assert torch.equal(grad_t, grad.t())


@pytest.mark.parametrize("tanh", [False, True], ids=["triton-sigmoid", "tanh-sigmoid"])
@pytest.mark.parametrize("rows, vocab", [(512, 50304), (7, 5)])
def test_a_kept_sigmoid_gives_the_bits_of_one_computed_twice(rows: int, vocab: int, tanh: bool) -> None:
    """The forward kernel can leave each logit's bf16 sigmoid in its place for the backward kernel: the losses
    and the gradient must be those of the kernels that compute the sigmoid in both passes, bit for bit."""
    from speedrun.trainer.mtp_kernels import mtp_backward_both_layouts, mtp_forward

    logits, _, targets_ahead, row_weights = batch(rows, vocab, (1.0, 0.5, 0.25), seed=2)
    losses, lse = mtp_forward(logits, targets_ahead, row_weights, ABC, tanh=tanh)
    kept = logits.clone()
    kept_losses, kept_lse = mtp_forward(kept, targets_ahead, row_weights, ABC, keep_sigmoid=True, tanh=tanh)
    assert torch.equal(losses, kept_losses) and torch.equal(lse, kept_lse)
    # what was written is the sigmoid of each logit, to within the approximate tanh and bf16's rounding
    assert (kept.float() - torch.sigmoid((logits.float() + ABC[1]) / ABC[2])).abs().max() <= 2**-8
    upstream = torch.rand(rows, device="cuda") + 0.5
    args = (targets_ahead, row_weights, lse, upstream, ABC, torch.float8_e5m2, 1 / GRAD_S)
    want = mtp_backward_both_layouts(logits, *args, tanh=tanh)
    got = mtp_backward_both_layouts(kept, *args, is_sigmoid=True, tanh=tanh)
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a.view(torch.uint8), b.view(torch.uint8))


@pytest.mark.parametrize("launch", CE_BOTH_LAYOUTS_CANDIDATES, ids=lambda launch: "-".join(map(str, launch.values())))
def test_every_launch_candidate_writes_the_same_gradient(launch: dict[str, int | bool]) -> None:
    """The backward kernel picks its launch settings by speed, so each must write the same bits, on a shape
    that is no multiple of any tile."""
    from speedrun.trainer.mtp_kernels import mtp_backward_both_layouts, mtp_forward

    logits, _, targets_ahead, row_weights = batch(1000, 5003, (1.0, 0.5, 0.25), seed=1)
    _, lse = mtp_forward(logits, targets_ahead, row_weights, ABC)
    upstream = torch.rand(1000, device="cuda")
    args = (logits, targets_ahead, row_weights, lse, upstream, ABC, torch.float8_e5m2, 1 / GRAD_S)
    got = mtp_backward_both_layouts(*args, launch=launch)
    first = mtp_backward_both_layouts(*args, launch=CE_BOTH_LAYOUTS_CANDIDATES[0])
    for a, b in zip(got, first, strict=True):
        assert torch.equal(a.view(torch.uint8), b.view(torch.uint8))
    assert torch.equal(got[1].view(torch.uint8), got[0].t().contiguous().view(torch.uint8))


def test_the_fp8_head_trains_as_the_bf16_one() -> None:
    torch.manual_seed(9)
    rows, weights, micro_steps = 4096, (1.0, 0.5, 0.25), 8
    x = torch.randn(rows, 768, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    head = (0.005 * torch.randn(768, 50304, device="cuda", dtype=torch.bfloat16)).requires_grad_(True)
    targets = torch.randint(0, 50257, (rows,), device="cuda")
    scales = (100 / 448, 1.6 / 448, GRAD_S / micro_steps)
    losses = Fp8HeadMtpLoss.apply(x, head, targets, weights, ABC, scales)
    x2, head2 = (t.detach().clone().requires_grad_(True) for t in (x, head))
    want = mtp_softcapped_cross_entropy(x2 @ head2, targets, weights, ABC)
    assert (losses - want).abs().max() < 0.05 * want.abs().max()
    (losses.sum() / micro_steps).backward()
    (want.sum() / micro_steps).backward()
    for got, exact in ((x.grad, x2.grad), (head.grad, head2.grad)):
        assert got.dtype == exact.dtype and torch.isfinite(got).all()
        assert (got.float() - exact.float()).norm() < 0.15 * exact.float().norm()


@pytest.fixture(scope="module")
def record_kernel(request: pytest.FixtureRequest) -> dict:
    """Record 84's CUDA loss kernel, compiled from its log (a copy beside the benchmarks on a GPU machine,
    else the upstream archive); see tests/record84.py for why tests may run it."""
    from tests.record84 import load

    carried = Path(__file__).resolve().parents[1] / "benchmarks" / "record84.txt"
    source = carried if carried.is_file() else request.getfixturevalue("upstream_records")
    if not os.path.isdir("/usr/local/cuda/include"):
        pytest.skip("record 84's kernel compiles against /usr/local/cuda/include, not on this machine")
    names = ["CE_KERNEL_BLOCK_SIZE", "CE_KERNEL_VOCAB_SIZE", "CE_KERNEL_DECLS", "CE_KERNEL_SOURCE",
             "ce_fwd_bwd_kernel", "ce_fwd_bwd"]  # fmt: skip
    scope = load(source, names, file="triton_kernels.py")
    # the record's next statement: the kernel keeps a whole row of logits in 100 KB of shared memory
    scope["ce_fwd_bwd_kernel"].set_shared_memory_config(scope["CE_KERNEL_VOCAB_SIZE"] * 2)
    return scope


@pytest.mark.parametrize("tanh", [False, True], ids=["triton-sigmoid", "tanh-sigmoid"])
def test_the_kernels_write_the_gradient_record_84s_kernel_writes(record_kernel: dict, tanh: bool) -> None:
    """Same logits, targets and weights: the same losses and the same FP8 gradient, except the last rows of a
    micro-batch, whose gradient ours takes for the loss it reports (see layers/head.py)."""
    from speedrun.trainer.mtp_kernels import mtp_backward_both_layouts, mtp_forward

    rows, weights, micro_steps = 2048, (1.0, 0.5, 0.25), 8
    logits, targets, targets_ahead, row_weights = batch(rows, 50304, weights, seed=3)
    losses = torch.empty(rows, device="cuda")
    grad = torch.empty(rows, 50304, device="cuda", dtype=torch.float8_e5m2)
    mtp = torch.tensor(weights, device="cuda")
    record_kernel["ce_fwd_bwd"](logits, targets, mtp, losses, grad, rows, 3, *ABC, GRAD_S / micro_steps, 1 / 8)
    ours, lse = mtp_forward(logits, targets_ahead, row_weights, ABC, tanh=tanh)
    # where the two sigmoids (a fast-math tanh there) round a target's value to neighbouring bf16 numbers, a
    # loss moves by up to 23 * 2**-8: rare, and bounded
    apart = (ours - losses).abs()
    assert (apart > 2e-3 + 1e-3 * losses.abs()).float().mean() < 0.01 and apart.max() < 0.3
    inside = slice(0, rows - 2)
    upstream = torch.full((rows,), 1 / micro_steps, device="cuda")
    our_grad, _ = mtp_backward_both_layouts(
        logits, targets_ahead, row_weights, lse, upstream, ABC, torch.float8_e5m2, micro_steps / GRAD_S, tanh=tanh
    )
    a, b = our_grad[inside].float(), grad[inside].float()
    print(
        f"tanh={tanh}: {(apart > 0).float().mean():.4%} of losses and {(a != b).float().mean():.4%} of FP8 "
        f"gradient values differ from record 84's"
    )
    # the record's sigmoid is a fast-math tanh, ours Triton's or the tanh form: a few values round to the next
    # e5m2 step
    assert (a != b).float().mean() < 0.01
    assert (a - b).norm() < 0.02 * b.norm()
