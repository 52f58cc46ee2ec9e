"""The FlexAttention stand-in for Flash Attention 3's varlen attention, against a plain PyTorch reference:
causal, within the sequences cu_seqlens marks (with the records' trailing padding), within the window, scaled.

On CPU FlexAttention runs its forward eagerly, through the same block lists and mask function as on a GPU, so
the values below test the masks themselves; its backward needs a GPU, so on CPU the gradient test checks the
custom operator's plumbing (the backward there applies the same mask densely). The bf16 test at the end is the
GPU one."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from speedrun.trainer import flash_flex
from speedrun.trainer.flash_flex import BLOCK, block_lists, flash_attn_varlen_func, get_kernel, reference_mask

HEADS, DIM = 2, 16


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor, left: int, scale: float):
    """Attention with an explicit (T, T) mask in fp32: the definition the stand-in must compute."""
    allowed = reference_mask(cu, q.size(0), left)
    scores = torch.einsum("qhd,khd->hqk", q.float(), k.float()) * scale
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.einsum("hqk,khd->qhd", scores.softmax(-1), v.float())


def packed(total: int, lengths: list[int], pad_to: int, device: str = "cpu") -> torch.Tensor:
    """cu_seqlens as the records build them: 0, the running ends, then the total repeated (empty sequences)."""
    ends = torch.tensor(lengths).cumsum(0).tolist()
    assert ends[-1] == total
    cu = [0, *ends] + [total] * (pad_to - len(ends) - 1)
    return torch.tensor(cu, dtype=torch.int32, device=device)


def qkv(total: int, seed: int, dtype: torch.dtype = torch.float32, device: str = "cpu") -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(total, HEADS, DIM, generator=generator).to(device, dtype) for _ in range(3)]


CASES = [
    # total, document lengths, window (left), as the records pass them: ws * 128 tokens, or -1 for none
    (384, [384], -1),
    (384, [100, 30, 1, 253], 128),
    (400, [5, 395], 256),  # a length that is not a whole number of blocks
    (512, [129, 127, 256], 37),  # a window that is not a whole number of blocks
    (640, [300, 340], 0),  # each token sees only itself
]


@pytest.mark.parametrize(("total", "lengths", "left"), CASES)
def test_values_match_the_reference(total: int, lengths: list[int], left: int) -> None:
    q, k, v = qkv(total, seed=total + left)
    cu = packed(total, lengths, pad_to=len(lengths) + 4)
    scale = 0.12
    out = flash_attn_varlen_func(
        q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=total, max_seqlen_k=total,
        causal=True, softmax_scale=scale, window_size=(left, 0),
    )  # fmt: skip
    assert out.shape == q.shape and out.dtype == q.dtype
    torch.testing.assert_close(out, reference(q, k, v, cu, left, scale), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("total", "lengths", "left"), CASES)
def test_block_lists_cover_every_allowed_pair_and_full_blocks_are_wholly_allowed(
    total: int, lengths: list[int], left: int
) -> None:
    cu = packed(total, lengths, pad_to=len(lengths) + 2)
    allowed = reference_mask(cu, total, left)
    n = -(-total // BLOCK)
    grid = F.pad(allowed, (0, n * BLOCK - total, 0, n * BLOCK - total)).view(n, BLOCK, n, BLOCK)
    some = grid.any(dim=(1, 3))
    partial_counts, partial, full_counts, full = block_lists(flash_flex.sequence_ids(cu, total), left)
    listed = torch.zeros(n, n, dtype=torch.bool)
    for qb in range(n):
        fulls = full[0, 0, qb, : full_counts[0, 0, qb]].tolist()
        for kb in partial[0, 0, qb, : partial_counts[0, 0, qb]].tolist() + fulls:
            listed[qb, kb] = True
        for kb in fulls:
            assert allowed[qb * BLOCK : (qb + 1) * BLOCK, kb * BLOCK : (kb + 1) * BLOCK].all(), (qb, kb)
    assert (listed | ~some).all(), "a block holding an allowed pair is missing"
    if lengths == [total] and left < 0:  # one document, no window: every block below the diagonal is whole
        assert full_counts.flatten().tolist() == list(range(n))


def test_the_window_and_the_documents_are_what_limit_attention() -> None:
    total, left = 512, 100
    cu = packed(total, [200, 312], pad_to=4)
    allowed = reference_mask(cu, total, left)
    assert allowed[150, 50] and not allowed[150, 49]  # 100 back is in, 101 is out
    assert not allowed[250, 199] and allowed[250, 200]  # the second document starts at 200
    assert not allowed[10, 11]  # causal
    assert reference_mask(cu, total, -1)[199].sum() == 200  # no window: the whole document so far


def test_gradients_flow_through_the_operator() -> None:
    total, left, scale = 256, 64, 0.2
    cu = packed(total, [100, 156], pad_to=5)
    q, k, v = (t.requires_grad_(True) for t in qkv(total, seed=1))
    out = flash_attn_varlen_func(q, k, v, cu, cu, total, total, softmax_scale=scale, causal=True, window_size=(left, 0))
    weights = torch.randn_like(out)
    grads = torch.autograd.grad((out * weights).sum(), (q, k, v))
    q2, k2, v2 = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
    expected = torch.autograd.grad((reference(q2, k2, v2, cu, left, scale) * weights).sum(), (q2, k2, v2))
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.fixture
def masks_built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The window of every block mask built from here on (the cache emptied first)."""
    built: list[int] = []
    real = flash_flex.block_lists
    monkeypatch.setattr(flash_flex, "block_lists", lambda ids, left: built.append(left) or real(ids, left))
    flash_flex._masks.clear()
    return built


def test_a_compiled_fullgraph_caller_traces_it_as_one_opaque_op_and_masks_are_built_once(
    masks_built: list[int],
) -> None:
    total = 256
    cu = packed(total, [128, 128], pad_to=3)

    def layers(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor) -> torch.Tensor:
        for left in (128, 256, 128, 256):  # short and long windows, layer after layer
            q = flash_attn_varlen_func(
                q, k, v, cu, cu, total, total, softmax_scale=0.1, causal=True, window_size=(left, 0)
            )
        return q

    compiled = torch.compile(layers, fullgraph=True, backend="aot_eager")
    q, k, v = qkv(total, seed=2)
    for _ in range(3):
        torch.testing.assert_close(compiled(q, k, v, cu), layers(q, k, v, cu), rtol=1e-5, atol=1e-5)
    assert sorted(masks_built) == [128, 256], "one mask per window for this batch, however many calls"


def test_the_mask_cache_never_reads_cu_seqlens_on_the_host_and_sees_writes_in_place(
    monkeypatch: pytest.MonkeyPatch, masks_built: list[int]
) -> None:
    # On a GPU a host read of cu_seqlens waits for all queued work, at every layer: the cache must not make one.
    total = 384
    cu = packed(total, [100, 284], pad_to=4)

    def no_host_read(*args: object) -> None:
        raise AssertionError("cu_seqlens read on the host")

    with monkeypatch.context() as m:
        m.setattr(torch.Tensor, "tolist", no_host_read)
        m.setattr(torch.Tensor, "item", no_host_read)
        first = flash_flex.block_mask(cu, total, -1)
        again = flash_flex.block_mask(cu, total, -1)
    assert masks_built == [-1] and again is first, "the same tensor finds its mask"
    q, k, v = qkv(total, seed=5)
    cu.copy_(packed(total, [300, 84], pad_to=4))  # the same memory, another batch
    moved = flash_attn_varlen_func(q, k, v, cu, cu, total, total, softmax_scale=0.1, causal=True)
    assert masks_built == [-1, -1], "a write in place is another batch"
    torch.testing.assert_close(moved, reference(q, k, v, cu, -1, 0.1), rtol=1e-5, atol=1e-5)


def test_other_arguments_than_the_records_are_refused() -> None:
    q, k, v = qkv(128, seed=3)
    cu = packed(128, [128], pad_to=2)
    with pytest.raises(NotImplementedError, match="causal"):
        flash_attn_varlen_func(q, k, v, cu, cu, 128, 128, causal=False)


def test_get_kernel_gives_the_interface_the_records_call() -> None:
    interface = get_kernel("kernels-community/flash-attn3").flash_attn_interface
    assert interface.flash_attn_varlen_func is flash_attn_varlen_func


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("left", [-1, 384, 1664])
def test_bf16_forward_and_backward_match_the_reference_on_gpu(left: int) -> None:
    total, scale = 4096, 0.1
    cu = packed(total, [1000, 7, 1500, 64, 1525], pad_to=16, device="cuda")
    q, k, v = (t.requires_grad_(True) for t in qkv(total, seed=4, dtype=torch.bfloat16, device="cuda"))
    out = flash_attn_varlen_func(q, k, v, cu, cu, 2048, 2048, softmax_scale=scale, causal=True, window_size=(left, 0))
    want = reference(q, k, v, cu, left, scale)
    torch.testing.assert_close(out.float(), want, rtol=2e-2, atol=2e-2)
    weights = torch.randn_like(want)
    grads = torch.autograd.grad((out.float() * weights).sum(), (q, k, v))
    q2, k2, v2 = (t.detach().float().requires_grad_(True) for t in (q, k, v))
    expected = torch.autograd.grad((reference(q2, k2, v2, cu, left, scale) * weights).sum(), (q2, k2, v2))
    for got, wanted in zip(grads, expected, strict=True):
        torch.testing.assert_close(got.float(), wanted, rtol=5e-2, atol=5e-2)
