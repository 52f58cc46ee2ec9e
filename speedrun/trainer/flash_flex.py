"""A stand-in for Flash Attention 3's `flash_attn_varlen_func`, built on PyTorch's FlexAttention.

The small-track records from #29 on call Flash Attention 3, which records #38 on load at run time from the
Hugging Face Hub (`get_kernel('...flash-attn3').flash_attn_interface`) and records #29-37 import as the
`flash_attn_interface` package. `speedrun reproduce --attention flex` writes this file beside the record's
script as `flash_attn_interface.py`, with a `kernels.py` whose `get_kernel` returns it, so those scripts run
where neither can be had: slower, computing the same function. Only torch is imported: the file must work on
its own in the record's folder.

The function the records use, and so the one computed here: q, k and v are (total tokens, heads, head_dim),
the sequences (documents) packed end to end; `cu_seqlens` holds their boundaries (trailing repeats are empty
sequences, as the records pad them); query i of a sequence attends to the keys j of the same sequence with
i - left <= j <= i (`causal=True`, `window_size=(left, right)`, left = -1 for no limit), scores scaled by
`softmax_scale`. `max_seqlen_*` only tune Flash Attention's launch and are not needed here.

Why it is shaped this way: the records compile their whole model with `fullgraph=True`, so anything the
attention builds per call would be traced into their graph and rebuilt at every call of every layer. The
attention is therefore an opaque custom operator (the compiler sees only its output shape); its block mask is
built eagerly, once per (cu_seqlens, window), from the block ranges of the sequence ids (never evaluating the
mask on every pair of tokens, which at 262,144 validation tokens would be 69 billion), and kept in a small cache;
the partly allowed blocks consult one mask function per device and length, which reads the sequence ids and
the window from buffers, so the compiled FlexAttention kernels are made once per shape, not per call. The cache
knows a batch by its tensor, never by reading cu_seqlens on the host: that read would wait for the GPU to
finish all it was given, at every layer, forward and backward, and leave it idle while the host queued the
next work. The backward pass recomputes the forward (FlexAttention exposes no separate backward).

The CPU tests check the values, masks and gradients (FlexAttention's forward runs eagerly on CPU; its
backward does not, so on CPU the gradient comes from the same mask applied densely); on a GPU,
tests/test_flash_flex.py checks forward and backward in bf16 against the dense reference.
"""

from __future__ import annotations

import types
import warnings
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn.attention.flex_attention import BlockMask, flex_attention
from torch.utils._python_dispatch import _disable_current_modes

BLOCK = 128  # FlexAttention's block of queries and keys
NO_LIMIT = 2**30  # a window wider than any sequence
_CACHE_ENTRIES = 16  # masks kept: a step's layers use 2 windows x 2 layouts (plain, paired) of one batch

MaskMod = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def sequence_ids(cu_seqlens: Tensor, total: int) -> Tensor:
    """The sequence each of `total` tokens belongs to: s where cu_seqlens[s] <= token < cu_seqlens[s + 1]."""
    positions = torch.arange(total, device=cu_seqlens.device, dtype=torch.int64)
    return torch.searchsorted(cu_seqlens.to(torch.int64), positions, right=True).to(torch.int32)


def reference_mask(cu_seqlens: Tensor, total: int, left: int) -> Tensor:
    """Dense (total, total) boolean mask of what may attend to what: the definition, for tests and CPU."""
    ids = sequence_ids(cu_seqlens, total)
    q = torch.arange(total, device=ids.device)[:, None]
    k = torch.arange(total, device=ids.device)[None, :]
    return (q >= k) & (ids[:, None] == ids[None, :]) & ((q - k) <= (left if left >= 0 else NO_LIMIT))


def _most_recent_first(selected: Tensor) -> tuple[Tensor, Tensor]:
    """Dense (Q, K) block selection -> (count per query block, selected key block indices, highest first)."""
    counts = selected.sum(dim=-1, dtype=torch.int32)
    index = torch.arange(selected.size(-1), device=selected.device, dtype=torch.int32)
    order = torch.where(selected, index, -1).sort(dim=-1, descending=True).indices.to(torch.int32)
    return counts[None, None].contiguous(), order[None, None].contiguous()


def block_lists(ids: Tensor, left: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """For each query block: the key blocks where some pair may attend (partial: the mask function decides
    token by token) and those where every pair may (full), from the first and last sequence id of each block
    and the distances between blocks. Sequence ids never decrease, so a block's ids span [first, last]."""
    total = ids.numel()
    n = -(-total // BLOCK)
    padded = torch.cat([ids, ids[-1:].expand(n * BLOCK - total)]) if n * BLOCK > total else ids
    blocks = padded.view(n, BLOCK)
    first, last = blocks[:, 0], blocks[:, -1]
    index = torch.arange(n, device=ids.device)
    qb, kb = index[:, None], index[None, :]
    window = left if left >= 0 else NO_LIMIT
    # nearest pair of a block pair: 0 apart on the diagonal, else (qb - kb - 1) * BLOCK + 1 tokens
    nearest = torch.clamp_min((qb - kb - 1) * BLOCK + 1, 0)
    farthest = (qb - kb + 1) * BLOCK - 1
    some = (kb <= qb) & (last[None, :] >= first[:, None]) & (nearest <= window)
    one_sequence = first == last
    every = (kb < qb) & one_sequence[:, None] & one_sequence[None, :] & (first[:, None] == first[None, :])
    every &= farthest <= window
    return (*_most_recent_first(some & ~every), *_most_recent_first(every))


class _MaskState:
    """The buffers one mask function reads (sequence ids, window): one per device and padded length, so that
    the compiled FlexAttention sees the same function at every call of that shape."""

    def __init__(self, length: int, device: torch.device) -> None:
        self.ids = torch.zeros(length, dtype=torch.int32, device=device)
        self.window = torch.zeros((), dtype=torch.int32, device=device)
        ids, window = self.ids, self.window

        def same_sequence_causal_window(b: Tensor, h: Tensor, q: Tensor, k: Tensor) -> Tensor:
            return (q >= k) & (ids[q] == ids[k]) & (q - k <= window)

        self.mask_mod: MaskMod = same_sequence_causal_window


_states: dict[tuple[str, int], _MaskState] = {}
_masks: OrderedDict[tuple, tuple[BlockMask, Tensor, int, Tensor]] = OrderedDict()


def _state(total: int, device: torch.device) -> _MaskState:
    length = -(-total // BLOCK) * BLOCK
    key = (str(device), length)
    if key not in _states:
        _states[key] = _MaskState(length, device)
    return _states[key]


def batch_key(cu_seqlens: Tensor) -> tuple:
    """Which batch cu_seqlens holds, known without reading it: its memory, shape and version counter. The cache
    entry keeps the tensor alive, so no other tensor takes that memory while the entry lives, and a write in
    place bumps the version. An inference tensor keeps no version: it is read on the host."""
    try:
        version = cu_seqlens._version
    except RuntimeError:
        return ("values", str(cu_seqlens.device), tuple(cu_seqlens.tolist()))
    return ("tensor", cu_seqlens.data_ptr(), cu_seqlens.dtype, tuple(cu_seqlens.shape), cu_seqlens.stride(), version)


def block_mask(cu_seqlens: Tensor, total: int, left: int) -> BlockMask:
    """The BlockMask of (cu_seqlens, window), from the cache or built now, with its mask function's buffers
    set for this call: the layers of a step, forward and backward, share one per window."""
    key = (total, left, batch_key(cu_seqlens))
    state = _state(total, cu_seqlens.device)
    if key in _masks:
        _masks.move_to_end(key)
        mask, ids, window, _ = _masks[key]
    else:
        ids = sequence_ids(cu_seqlens, total)
        window = left if left >= 0 else NO_LIMIT
        lists = block_lists(ids, left)
        mask = BlockMask.from_kv_blocks(*lists, BLOCK_SIZE=BLOCK, mask_mod=state.mask_mod, seq_lengths=(total, total))
        _masks[key] = (mask, ids, window, cu_seqlens)
        while len(_masks) > _CACHE_ENTRIES:
            _masks.popitem(last=False)
    state.ids[:total].copy_(ids)
    state.window.fill_(window)
    return mask


def document_mask(ids: Tensor, left: int, paired: bool = False) -> BlockMask:
    """The BlockMask of a window over the sequences of `ids` (`sequence_ids`), with a mask function of its own,
    for callers that build their masks inside their compiled graph (our trainer): no cache and no shared
    buffers, every step traceable. Paired: over the 2T positions of paired heads, position p being token
    p // 2 (the boundaries doubled), so the mask function reads ids[p // 2].

    The caller makes `ids` outside its compiled graph. A mask function that reads a tensor computed inside the
    graph does not compile without autograd (PyTorch 2.11's Inductor asserts on that tensor's layout when it
    renders FlexAttention's kernel), and validation runs without autograd."""
    window = left if left >= 0 else NO_LIMIT
    if paired:

        def paired_mask(b: Tensor, h: Tensor, q: Tensor, k: Tensor) -> Tensor:
            return (q >= k) & (ids[q // 2] == ids[k // 2]) & (q - k <= window)

        mask_mod, position_ids = paired_mask, ids.repeat_interleave(2)
    else:

        def plain_mask(b: Tensor, h: Tensor, q: Tensor, k: Tensor) -> Tensor:
            return (q >= k) & (ids[q] == ids[k]) & (q - k <= window)

        mask_mod, position_ids = plain_mask, ids
    total = position_ids.numel()
    lists = block_lists(position_ids, left)
    return BlockMask.from_kv_blocks(*lists, BLOCK_SIZE=BLOCK, mask_mod=mask_mod, seq_lengths=(total, total))


_compiled: Callable[..., Tensor] | None = None


def flex(q: Tensor, k: Tensor, v: Tensor, mask: BlockMask, scale: float) -> Tensor:
    """FlexAttention on (1, heads, T, D): compiled on CUDA (uncompiled, it would compute every score), eager
    elsewhere (CPU runs the forward only)."""
    global _compiled
    if q.device.type != "cuda":
        with warnings.catch_warnings():  # that eager FlexAttention computes every score: known, and small here
            warnings.simplefilter("ignore", UserWarning)
            return flex_attention(q, k, v, block_mask=mask, scale=scale)  # type: ignore[return-value]
    if _compiled is None:
        # one compiled kernel per shape: the records' batch stages, their paired-head layouts, validation
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        _compiled = torch.compile(flex_attention, dynamic=False)
    return _compiled(q, k, v, block_mask=mask, scale=scale)


def _attention(q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, left: int, scale: float) -> Tensor:
    """(T, heads, D) in and out."""
    total = q.size(0)
    mask = block_mask(cu_seqlens, total, left)
    q4, k4, v4 = (t.detach().transpose(0, 1).unsqueeze(0) for t in (q, k, v))  # autograd is the operator's
    with torch.no_grad():
        return flex(q4, k4, v4, mask, scale).squeeze(0).transpose(0, 1).contiguous()


def dense_varlen_attention(q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, left: int, scale: float) -> Tensor:
    """The same function with a dense (T, T) mask, differentiable everywhere: the CPU backward, and the
    attention of small CPU runs."""
    allowed = reference_mask(cu_seqlens, q.size(0), left)
    q4, k4, v4 = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))
    y = torch.nn.functional.scaled_dot_product_attention(q4, k4, v4, attn_mask=allowed, scale=scale)
    return y.squeeze(0).transpose(0, 1)


_ORDINARY_EXCLUDE = torch._C._dispatch_tls_local_exclude_set()  # outside any operator, at import
_OP = "speedrun_flex::varlen_attention_" + __name__.replace(".", "_")


@torch.library.custom_op(_OP, mutates_args=())
def _varlen_op(q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, left: int, scale: float) -> Tensor:
    # whatever modes the caller's compiled graph runs under (checks of its operators, say) are not this code's:
    # the mask is built with vmap, which they would intercept
    include = torch._C._dispatch_tls_local_include_set()
    with _disable_current_modes(), torch._C._ForceDispatchKeyGuard(include, _ORDINARY_EXCLUDE):
        return _attention(q, k, v, cu_seqlens, left, scale)


@_varlen_op.register_fake
def _(q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, left: int, scale: float) -> Tensor:
    return torch.empty_like(q)


@torch.library.custom_op(_OP + "_backward", mutates_args=())
def _varlen_backward_op(
    grad: Tensor, q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, left: int, scale: float
) -> tuple[Tensor, Tensor, Tensor]:
    # an operator runs below autograd (the dispatcher leaves it out); the recomputation needs it back
    include = torch._C._dispatch_tls_local_include_set()
    with _disable_current_modes(), torch._C._ForceDispatchKeyGuard(include, _ORDINARY_EXCLUDE):
        return _recompute_gradients(grad, q, k, v, cu_seqlens, left, scale)


def _recompute_gradients(
    grad: Tensor, q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, left: int, scale: float
) -> tuple[Tensor, Tensor, Tensor]:
    with torch.enable_grad():
        q, k, v = (t.detach().requires_grad_(True) for t in (q, k, v))
        if q.device.type == "cuda":
            total = q.size(0)
            mask = block_mask(cu_seqlens, total, left)
            q4, k4, v4 = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))
            y = flex(q4, k4, v4, mask, scale).squeeze(0).transpose(0, 1)
        else:
            y = dense_varlen_attention(q, k, v, cu_seqlens, left, scale)
        dq, dk, dv = torch.autograd.grad(y, (q, k, v), grad)
    return dq, dk, dv


@_varlen_backward_op.register_fake
def _(
    grad: Tensor, q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, left: int, scale: float
) -> tuple[Tensor, Tensor, Tensor]:
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple, output: Tensor) -> None:
    q, k, v, cu_seqlens, left, scale = inputs
    ctx.save_for_backward(q, k, v, cu_seqlens)
    ctx.window, ctx.scale = left, scale


def _backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple:
    q, k, v, cu_seqlens = ctx.saved_tensors
    dq, dk, dv = _varlen_backward_op(grad.contiguous(), q, k, v, cu_seqlens, ctx.window, ctx.scale)
    return dq, dk, dv, None, None, None


_varlen_op.register_autograd(_backward, setup_context=_setup_context)


def flash_attn_varlen_func(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    cu_seqlens_q: Tensor,
    cu_seqlens_k: Tensor,
    max_seqlen_q: int | Tensor | None = None,
    max_seqlen_k: int | Tensor | None = None,
    softmax_scale: float | None = None,
    causal: bool = False,
    window_size: tuple[int, int] = (-1, -1),
    **unused: object,
) -> Tensor:
    """Flash Attention 3's varlen attention, for the arguments the records pass (see the module docstring)."""
    if not causal:
        raise NotImplementedError("the FlexAttention stand-in computes causal attention only, as the records use")
    if q.shape != k.shape or k.shape != v.shape:
        raise NotImplementedError("the FlexAttention stand-in needs q, k and v of one shape, as the records use")
    if cu_seqlens_k is not cu_seqlens_q and not torch.equal(cu_seqlens_q, cu_seqlens_k):
        raise NotImplementedError("the FlexAttention stand-in needs the same sequences for queries and keys")
    scale = softmax_scale if softmax_scale is not None else q.size(-1) ** -0.5
    left = int(window_size[0])
    return _varlen_op(q, k, v, cu_seqlens_q, left, float(scale))


def get_kernel(name: str, *args: object, **kwargs: object) -> types.SimpleNamespace:
    """What `kernels.get_kernel('...flash-attn3')` gives the records: an object with `flash_attn_interface`."""
    interface = types.SimpleNamespace(flash_attn_varlen_func=flash_attn_varlen_func)
    return types.SimpleNamespace(flash_attn_interface=interface)
