"""Attention of the 2026-05 recipe (record 84): rotary embeddings rescaled by YaRN as the window grows, paired
heads, the partial key offset, gated value embeddings and the sparse output gate, over documents packed end to
end (record 84 calls Flash Attention 3's varlen function; here FlexAttention, its block masks made in the
compiled forward: `Documents`)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention.flex_attention import BlockMask, flex_attention

from speedrun.trainer.fa4 import varlen_attention
from speedrun.trainer.flash_flex import dense_varlen_attention, document_mask, flex

ATTENTION_BLOCK = 128  # windows are counted in blocks of this many tokens


def rms_norm(x: Tensor) -> Tensor:
    return F.rms_norm(x, (x.size(-1),))


class Yarn(nn.Module):
    """Rotary position embedding on adjacent pairs of the first half of each head's dimensions (the second
    half carries no position), with YaRN (record 31): when the window grows from `old` to `new` tokens, the
    frequencies that turn fewer than `alpha` times within the old window are divided by new/old, those that
    turn more than `beta` times are kept, and the ones in between are interpolated; the attention scale grows
    by 1 + 0.2 ln(new/old). With `paired`, positions are those of the interleaved sequence of paired heads:
    a head pair's two halves sit at positions 2t and 2t + 1.

    The cos and sin tables are kept in bf16, as the record keeps them."""

    def __init__(
        self, head_dim: int, max_seq_len: int, min_frequency: float, scale: float, alpha: float, beta: float
    ) -> None:
        super().__init__()
        self.head_dim, self.max_seq_len = head_dim, max_seq_len
        self.min_frequency, self.initial_scale, self.alpha, self.beta = min_frequency, scale, alpha, beta
        self.register_buffer("cos", torch.empty(0), persistent=False)
        self.register_buffer("sin", torch.empty(0), persistent=False)
        self.register_buffer("frequencies", torch.empty(0), persistent=False)
        self.reset()

    def reset(self, device: torch.device | None = None) -> None:
        """Back to the frequencies and scale of the start of training."""
        device = device or self.frequencies.device
        quarter = self.head_dim // 4
        turning = self.min_frequency ** torch.linspace(0, 1, steps=quarter, dtype=torch.float32, device=device)
        self.frequencies = torch.cat([turning.repeat_interleave(2), turning.new_zeros(self.head_dim // 2)])
        self.scale = self.initial_scale
        self._tables()

    def _tables(self) -> None:
        positions = torch.arange(2 * self.max_seq_len, dtype=torch.float32, device=self.frequencies.device)
        angles = torch.outer(positions, self.frequencies)
        sin = angles.sin()
        sin[..., 1::2] *= -1  # a pair (x0, x1) turns to (cos x0 + sin x1, cos x1 - sin x0)
        self.cos, self.sin = angles.cos().to(torch.bfloat16), sin.to(torch.bfloat16)

    def extend(self, old_window: int, new_window: int) -> None:
        """YaRN: rescale the frequencies and the attention scale for a window grown from old to new tokens."""
        turns = old_window * self.frequencies / (2 * math.pi)
        shrink = old_window / new_window
        kept = torch.clamp((turns - self.alpha) / (self.beta - self.alpha), 0, 1)
        self.frequencies = self.frequencies * (shrink + kept * (1 - shrink))
        self._tables()
        self.scale *= 0.2 * math.log(new_window / old_window) + 1

    def forward(self, x: Tensor, paired: bool = False) -> Tensor:
        """x: (T, heads, head_dim), or with `paired` (T, head pairs, 2 * head_dim), the pair's halves taking
        positions 2t and 2t + 1."""
        T = x.size(0)
        if paired:
            cos = torch.cat([self.cos[0 : 2 * T : 2], self.cos[1 : 2 * T : 2]], dim=-1)[:, None]
            sin = torch.cat([self.sin[0 : 2 * T : 2], self.sin[1 : 2 * T : 2]], dim=-1)[:, None]
        else:
            cos, sin = self.cos[:T, None], self.sin[:T, None]
        swapped = x.view(*x.shape[:-1], x.size(-1) // 2, 2).flip(-1).view(x.shape)
        return cos * x + sin * swapped


def offset_keys(k: Tensor) -> Tensor:
    """Partial key offset (record 49): the position-free half of each key moves one token forward, so a query
    can match the token before a key, which lets one layer do induction. (T, heads, head_dim) in and out."""
    half = k.size(-1) // 2
    shifted = torch.cat([k[:1, :, half:], k[:-1, :, half:]])
    return torch.cat([k[:, :, :half], shifted], dim=-1)


class Documents:
    """The documents of one packed micro-batch as the attention layers read them: causal attention within each
    document, at most a window back. With FlexAttention (on a GPU), one block mask per (layout, window), made
    the first time a layer asks for it and shared by the layers after: made inside the compiled forward, the
    masks and the attention are part of its graph, with no call into Python per layer. With flash-attn-4
    (`fa4.py`, the model's `attention = "fa4"`), its varlen kernel over `cu_seqlens`, no masks. Without either
    (on a CPU: tests and small runs), the dense reference. A paired layer attends over a sequence twice as long, the
    boundaries doubled. `ids`: each token's document (`sequence_ids`), made outside the compiled graph (see
    `document_mask`)."""

    def __init__(self, cu_seqlens: Tensor, ids: Tensor, kernel: str) -> None:
        if kernel not in ("flex", "fa4", "dense"):  # "auto" is for config.with_attention_for to settle
            raise ValueError(f"attention kernel {kernel!r}: use flex, fa4 or dense")
        self.cu_seqlens, self.ids, self.kernel = cu_seqlens, ids, kernel
        self.masks: dict[tuple[bool, int], BlockMask] = {}

    def attend(self, q: Tensor, k: Tensor, v: Tensor, window: int, scale: float, paired: bool) -> Tensor:
        """q, k, v: (T, heads, head_dim), the same out."""
        if self.kernel != "flex":
            cu_seqlens = 2 * self.cu_seqlens if paired else self.cu_seqlens
            if self.kernel == "fa4":  # flash-attn-4 (fa4.py); a document is no longer than the sequence
                return varlen_attention(q, k, v, cu_seqlens, q.size(0), window, scale)
            return dense_varlen_attention(q, k, v, cu_seqlens, window, scale)
        if (paired, window) not in self.masks:
            self.masks[paired, window] = document_mask(self.ids, window, paired)
        q4, k4, v4 = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))
        mask = self.masks[paired, window]
        if torch.compiler.is_compiling():  # part of the caller's graph
            y = flex_attention(q4, k4, v4, block_mask=mask, scale=scale)
        else:  # an uncompiled model (--no-compile): FlexAttention compiled alone, never every score at once
            y = flex(q4, k4, v4, mask, scale)
        return y.squeeze(0).transpose(0, 1)  # type: ignore[union-attr]


class Attention(nn.Module):
    """One attention layer. Its query and key weights are stored per pair of heads, (2 * pairs, 2 * head_dim,
    model_dim), so NorMuon orthogonalises each pair's on its own (record 80); value and output weights are
    (2, model_dim, model_dim). `lambdas` (2,) scale the q/k/v weights and the output weight (record 47)."""

    def __init__(self, model_dim: int, num_heads: int, head_dim: int, paired: bool, key_offset: bool) -> None:
        super().__init__()
        self.num_heads, self.head_dim, self.paired, self.key_offset = num_heads, head_dim, paired, key_offset
        bound = 3**0.5 * 0.5 * model_dim**-0.5
        self.qk = nn.Parameter(torch.empty(num_heads, 2 * head_dim, model_dim).uniform_(-bound, bound))
        self.vo = nn.Parameter(torch.empty(2, model_dim, model_dim).uniform_(-bound, bound))

    def forward(
        self,
        x: Tensor,
        lambdas: Tensor,
        rotary: Yarn,
        documents: Documents,
        window: int,
        gate: Tensor,
        value_embed: Tensor | None,
        value_gate: Tensor | None,
    ) -> Tensor:
        """x: the normalised input (T, model_dim); window: how many tokens back a query may look."""
        T, H, D = x.size(0), self.num_heads, self.head_dim
        w = torch.cat([self.qk.flatten(0, 1), self.vo[0]]).type_as(x)
        q, k, v = F.linear(x, lambdas[0] * w).view(T, 3 * H, D).chunk(3, dim=-2)
        q, k = rms_norm(q), rms_norm(k)
        if self.paired:
            # a pair's two heads become consecutive positions of a sequence twice as long, so each head's
            # queries see the other head's keys; the window, in positions of that sequence, halves in tokens
            q, k = (rotary(t.reshape(T, H // 2, 2 * D), paired=True).reshape(2 * T, H // 2, D) for t in (q, k))
            v = v.reshape(2 * T, H // 2, D)
            if value_embed is not None:
                value_gate_out = 2 * torch.sigmoid(F.linear(x[..., : value_gate.size(-1)], value_gate))
                v = v + value_gate_out.view(2 * T, H // 2, 1) * value_embed.view_as(v)
        else:
            q, k = rotary(q), rotary(k)
            if self.key_offset:
                k = offset_keys(k)
            if value_embed is not None:
                half = value_gate.size(-1) // 2  # the gate reads half its inputs from x, half from the embedding
                inputs = torch.cat([x[..., :half], value_embed[..., :half]], dim=-1)
                v = v + 2 * torch.sigmoid(F.linear(inputs, value_gate)).view(T, H, 1) * value_embed.view_as(v)
        y = documents.attend(q, k, v, window, rotary.scale, self.paired)
        y = y.view(T, H, D) * torch.sigmoid(F.linear(x[..., : gate.size(-1)], gate)).view(T, H, 1)
        return F.linear(y.reshape(T, H * D), lambdas[1] * self.vo[1].type_as(y))
