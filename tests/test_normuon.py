"""The 2026-05 recipe's optimisers, held to record 84's own definitions (taken from its published log, see
tests/record84.py for why running them is allowed in tests): Polar Express, NorMuon's normalisation, cautious
weight decay tied to the learning rate (NorMuon and Adam), Adam's update."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from speedrun.trainer.adam import CautiousAdam, cautious_adam_update_
from speedrun.trainer.normuon import (
    NorMuon,
    cautious_update_,
    nesterov_momentum_,
    normuon_normalize_,
    polar_express,
    reduced_dim,
)
from tests.record84 import load

pytestmark = pytest.mark.archive

SHAPES = [(96, 32), (16, 48), (32, 32), (4, 48, 16)]  # tall, wide, square, a stack


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", SHAPES)
def test_momentum_and_polar_express_match_the_record(upstream_records: Path, shape: tuple[int, ...]) -> None:
    record = load(upstream_records, ["polar_express_coeffs", "polar_express"])
    grad, buffer = randn(*shape, seed=1), randn(*shape, seed=2)
    theirs = record["polar_express"](grad.clone(), buffer.clone(), torch.tensor(0.9))
    ours_buffer = buffer.clone()
    ours = polar_express(nesterov_momentum_(grad.clone(), ours_buffer, 0.9), dtype=torch.bfloat16)
    assert ours.dtype == theirs.dtype == torch.bfloat16
    # bf16 iterations round differently in different matmul orders: compare the matrices as wholes
    assert (ours.float() - theirs.float()).norm() / theirs.float().norm() < 1.5e-2
    # in fp32 the singular values land where the record's bf16 ones do, near 1
    exact = polar_express(nesterov_momentum_(grad.clone(), buffer.clone(), 0.9), dtype=torch.float32)
    singular = torch.linalg.svdvals(exact)
    assert singular.min() > 0.6 and singular.max() < 1.25


@pytest.mark.parametrize("shape", SHAPES)
def test_normuon_normalisation_matches_the_record(upstream_records: Path, shape: tuple[int, ...]) -> None:
    record = load(upstream_records, ["NorMuonAndAdam._apply_normuon_variance_reduction"])
    update = randn(*shape, seed=3)
    dim = reduced_dim(shape)
    reduced = list(shape)
    reduced[dim] = 1
    moment = randn(*reduced, seed=4).abs()
    ours_moment = moment.clone()
    ours = normuon_normalize_(update.clone(), ours_moment, 0.9)
    theirs_moment = moment.clone()
    theirs = record["_apply_normuon_variance_reduction"](update.clone(), theirs_moment, 0.9, dim)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours_moment, theirs_moment)
    assert torch.allclose(ours.norm(dim=(-2, -1)), update.norm(dim=(-2, -1)), rtol=1e-5)  # the norm is kept


def test_cautious_decay_matches_the_records_mantissa_tracked_update(upstream_records: Path) -> None:
    # PyTorch's CPU build has no shifts of uint32: the same bits, shifted as int32
    uint32_as_int32 = {"torch.uint32": "torch.int32"}
    record = load(upstream_records, ["NorMuonAndAdam._cautious_wd_and_update_inplace"], replace=uint32_as_int32)
    weight, update = randn(64, 32, seed=5), randn(64, 32, seed=6)
    lr, wd = 0.023 * 1.5, 1.2 * 0.023
    ours = weight.clone()
    cautious_update_(ours, update, lr, wd)
    # the record keeps a bf16 weight (the high 16 bits of the fp32 one) and the low 16 bits beside it
    bits = weight.view(torch.int32)
    high, low = (bits >> 16).to(torch.uint16), (bits & 0xFFFF).to(torch.uint16)
    record["_cautious_wd_and_update_inplace"](high, low, update, torch.tensor(wd), torch.tensor(lr))
    theirs = ((high.to(torch.int32) << 16) | low.to(torch.int32)).view(torch.float32)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    assert not torch.equal(ours, weight - lr * update), "the decay did something"


def test_adam_update_matches_the_record(upstream_records: Path) -> None:
    record = load(upstream_records, ["NorMuonAndAdam._adam_update_step"])
    weight = randn(40, 24, seed=7).bfloat16()
    m, v = randn(40, 24, seed=8) * 0.1, randn(40, 24, seed=9).square() * 0.01
    betas, eps, lr, wd, t = (0.75, 0.95), 1e-10, 0.008 * 75, 0.005 * 5, 3
    step_size = lr * (1 - betas[1] ** t) ** 0.5 / (1 - betas[0] ** t)  # as the record's _adam_update computes it
    decay = lr * lr * wd
    for g_seed in (10, 11):
        grad = randn(40, 24, seed=g_seed)
        theirs_state = [weight.clone(), m.clone(), v.clone()]
        record["_adam_update_step"](
            theirs_state[0], grad, theirs_state[1], theirs_state[2], *betas, eps,
            torch.tensor(step_size), torch.tensor(decay),
        )  # fmt: skip
        ours_state = [weight.clone(), m.clone(), v.clone()]
        cautious_adam_update_(ours_state[0], grad, ours_state[1], ours_state[2], betas, eps, step_size, decay)
        for ours, theirs in zip(ours_state, theirs_state, strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


def test_the_optimiser_classes_step_as_their_functions() -> None:
    torch.manual_seed(0)
    bank = torch.nn.Parameter(torch.randn(3, 2, 48, 16))
    bank.grad = torch.randn_like(bank)
    expected = bank.detach().clone()
    muon = NorMuon([dict(params=[bank], lr_factor=1.0)], lr=0.02, momentum=0.95, beta2=0.9, weight_decay=1.2)
    muon.step()
    direction = polar_express(nesterov_momentum_(bank.grad.clone(), torch.zeros_like(bank), 0.95))
    reduced = torch.zeros(3, 2, 48, 1)
    direction = normuon_normalize_(direction, reduced, 0.9)
    cautious_update_(expected, direction, 0.02 * 3**0.5, 1.2 * 0.02)  # 48 x 16: shape factor sqrt(3)
    torch.testing.assert_close(bank.detach(), expected)

    table = torch.nn.Parameter(torch.randn(10, 4))
    table.grad = torch.randn_like(table)
    start = table.detach().clone()
    adam = CautiousAdam([dict(params=[table], lr=0.1, weight_decay=5.0)], lr=0.1, betas=(0.5, 0.95), eps=1e-10)
    adam.step()
    m, v = torch.zeros(10, 4), torch.zeros(10, 4)
    cautious_adam_update_(start, table.grad, m, v, (0.5, 0.95), 1e-10, 0.1 * 0.05**0.5 / 0.5, 0.1 * 0.1 * 5.0)
    torch.testing.assert_close(table.detach(), start)
