"""flash-attn-4's varlen attention (`pip install flash-attn-4`) as a PyTorch custom operator, so that it sits
inside the 2026-05 model's compiled graph: the package's own autograd function calls CUTLASS's CuTe DSL
compiler on first use, which `torch.compile` cannot trace, so the compiler is shown two opaque operators (the
forward, which also returns the log-sum-exp the backward needs, and the backward) and their output shapes.

The function is record 84's Flash Attention 3 call: q, k and v (total tokens, heads, head_dim) of documents
packed end to end, `cu_seqlens` their boundaries, query i attending to the keys j of its document with
i - left <= j <= i, scores scaled by `scale`. `max_len` bounds a document's length.

`KERNELS` holds the two functions that run: flash-attn-4's on a GPU; a test may put the dense reference there
to check the operators' plumbing (autograd, fake shapes, compiling) on a CPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

INSTALL_HINT = "flash-attn-4 is not installed: pip install 'speedrun[fa4]' (Hopper or newer), or use --attention flex"


def silence_cutlass_warnings() -> None:
    """CUTLASS's DSL warns once per compiled kernel that flash-attn-4's `aux_data` argument (None here) is no
    JIT argument: a screenful of warnings in every run's warm-up that says nothing about the run."""
    warnings.filterwarnings("ignore", message=r"Argument aux_data .* cannot be converted to a JitArgument")


silence_cutlass_warnings()


def installed() -> bool:
    try:
        import flash_attn.cute  # noqa: F401
    except ImportError:
        return False
    return True


def fastest_here(device: str) -> str:
    """The kernel `--attention auto` means on this machine: flash-attn-4 where it runs (installed, and a Hopper
    or newer GPU), FlexAttention elsewhere. On one H200, flash-attn-4 took 58.7 / 37.0 / 63.4 ms a step for the
    attention layers at record 84's three batch stages against FlexAttention's 71.2 / 66.5 / 111.9
    (benchmarks/attention_kernels.py)."""
    if device == "cpu" or not torch.cuda.is_available() or torch.cuda.get_device_capability() < (9, 0):
        return "flex"
    return "fa4" if installed() else "flex"


def _fa4_forward(q: Tensor, k: Tensor, v: Tensor, cu: Tensor, max_len: int, left: int, scale: float):
    from flash_attn.cute.interface import _flash_attn_fwd

    out, lse, *_ = _flash_attn_fwd(
        q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=max_len, max_seqlen_k=max_len,
        softmax_scale=scale, causal=True, window_size_left=left, window_size_right=0, return_lse=True,
    )  # fmt: skip
    return out, lse


def _fa4_backward(dout, q, k, v, out, lse, cu: Tensor, max_len: int, left: int, scale: float):
    from flash_attn.cute.interface import _flash_attn_bwd

    dq, dk, dv = _flash_attn_bwd(
        q, k, v, out, dout, lse, scale, True, window_size_left=left, window_size_right=0, cu_seqlens_q=cu,
        cu_seqlens_k=cu, max_seqlen_q=max_len, max_seqlen_k=max_len,
    )  # fmt: skip
    return dq, dk, dv


@dataclass
class Kernels:
    forward: Callable[..., tuple[Tensor, Tensor]] = _fa4_forward
    backward: Callable[..., tuple[Tensor, Tensor, Tensor]] = _fa4_backward


KERNELS = Kernels()


@torch.library.custom_op("speedrun_fa4::varlen_forward", mutates_args=())
def varlen_forward(
    q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, max_len: int, left: int, scale: float
) -> tuple[Tensor, Tensor]:
    out, lse = KERNELS.forward(q, k, v, cu_seqlens, max_len, left, scale)
    return out.contiguous(), lse.contiguous()  # as the fake below says, whatever q's strides


@varlen_forward.register_fake
def _(q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, max_len: int, left: int, scale: float):
    return q.new_empty(q.shape), q.new_empty((q.size(1), q.size(0)), dtype=torch.float32)


@torch.library.custom_op("speedrun_fa4::varlen_backward", mutates_args=())
def varlen_backward(
    dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, cu_seqlens: Tensor, max_len: int,
    left: int, scale: float,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    dq, dk, dv = KERNELS.backward(dout.contiguous(), q, k, v, out, lse, cu_seqlens, max_len, left, scale)
    return dq.contiguous(), dk.contiguous(), dv.contiguous()


@varlen_backward.register_fake
def _(dout, q, k, v, out, lse, cu_seqlens, max_len, left, scale):  # type: ignore[no-untyped-def]
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


def _setup_context(ctx, inputs, output) -> None:  # type: ignore[no-untyped-def]
    q, k, v, cu_seqlens, max_len, left, scale = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse, cu_seqlens)
    ctx.max_len, ctx.left, ctx.scale = max_len, left, scale


def _backward(ctx, dout: Tensor, _dlse: Tensor | None):  # type: ignore[no-untyped-def]
    q, k, v, out, lse, cu_seqlens = ctx.saved_tensors
    dq, dk, dv = varlen_backward(dout, q, k, v, out, lse, cu_seqlens, ctx.max_len, ctx.left, ctx.scale)
    return dq, dk, dv, None, None, None, None


varlen_forward.register_autograd(_backward, setup_context=_setup_context)


def varlen_attention(
    q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor, max_len: int, left: int, scale: float
) -> Tensor:
    """Attention within the documents `cu_seqlens` marks, at most `left` tokens back; (T, heads, head_dim)."""
    return varlen_forward(q, k, v, cu_seqlens, max_len, left, scale)[0]
