"""The GPT of the speedrun records.

A pre-norm transformer on one packed sequence of documents (batch size 1), with:
rotary embeddings on half of each head's dimensions, QK-norm, ReLU^2 MLPs, zero-initialised output
projections, value embeddings mixed into the values of the first and last layers, the normalised token
embedding mixed back into every layer's input (x0), U-net skip connections with learned weights,
document-aware causal attention with long and short sliding windows, a sparse gate on each head's output,
and an untied head (FP8 on Hopper) whose logits are softcapped before the cross-entropy.

Attention runs through FlexAttention on CUDA; on CPU the same mask is built densely for SDPA.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention.flex_attention import BlockMask, flex_attention

from speedrun.trainer.config import ATTENTION_BLOCK_SIZE, ModelConfig
from speedrun.trainer.kernels import (
    softcapped_ce_backward_both_layouts,
    softcapped_ce_forward,
    softcapped_cross_entropy,
    triton_available,
)

EOT_TOKEN = 50256  # GPT-2 end-of-text: it begins every document
EVAL_SLICE_TOKENS = 32768  # evaluation computes the head's logits this many tokens at a time, to bound their memory
AttentionMask = BlockMask | Tensor  # a FlexAttention BlockMask on CUDA, a dense boolean (T, T) mask on CPU
MaskMod = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]  # FlexAttention's (batch, head, q_idx, kv_idx) -> allowed


def rms_norm(x: Tensor) -> Tensor:
    return F.rms_norm(x, (x.size(-1),))


def uniform_init_(weight: Tensor, fan_in: int | None = None) -> Tensor:
    """Uniform init with std 0.5 / sqrt(fan_in), slightly smaller than PyTorch's default for linear layers.
    The fan-in is the last dimension unless given (a matrix stored transposed)."""
    bound = 3**0.5 * 0.5 * (fan_in or weight.size(-1)) ** -0.5
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


class Rotary(nn.Module):
    """Rotary position embedding on the first half of the head dimensions; the second half carries no position."""

    def __init__(self, head_dim: int, max_seq_len: int, min_frequency: float) -> None:
        super().__init__()
        quarter = head_dim // 4
        frequencies = min_frequency ** torch.linspace(0, 1, steps=quarter, dtype=torch.float32)
        frequencies = torch.cat([frequencies, frequencies.new_zeros(quarter)])
        angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), frequencies)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:  # x: (T, heads, head_dim)
        cos, sin = self.cos[: x.size(0), None, :], self.sin[: x.size(0), None, :]
        x1, x2 = x.float().chunk(2, dim=-1)
        return torch.cat((x1 * cos + x2 * sin, x2 * cos - x1 * sin), dim=-1).type_as(x)


@functools.cache
def _compiled_flex_attention() -> Callable[..., Tensor]:
    return torch.compile(flex_attention, dynamic=False)


def attend(q: Tensor, k: Tensor, v: Tensor, mask: AttentionMask, scale: float) -> Tensor:
    """Masked attention on (T, heads, head_dim) tensors."""
    q, k, v = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))
    if isinstance(mask, BlockMask):
        # uncompiled FlexAttention would materialise every score and ignore the block lists: outside a compiled
        # block, FlexAttention is compiled on its own
        flex = flex_attention if torch.compiler.is_compiling() else _compiled_flex_attention()
        y = flex(q, k, v, block_mask=mask, scale=scale)
    else:
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return y.squeeze(0).transpose(0, 1)


class AttentionGate(nn.Module):
    """Sparse attention gate: each head's output is scaled by sigmoid(w_h . x[:k]), read from the first k
    dimensions of the layer's normalised input. The weights start at zero, so every gate starts at 1/2; as a
    matrix inside a block, Muon trains it."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.dims = config.attention_gate_dims
        self.weight = nn.Parameter(torch.zeros(config.num_heads, self.dims))

    def forward(self, x: Tensor) -> Tensor:  # x: (T, model_dim) -> (T, heads, 1)
        return torch.sigmoid(F.linear(x[..., : self.dims], self.weight.to(x.dtype))).unsqueeze(-1)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig, max_seq_len: int) -> None:
        super().__init__()
        self.num_heads, self.head_dim = config.num_heads, config.head_dim
        inner = config.num_heads * config.head_dim
        # q, k and v stacked: Muon orthogonalises each of the three separately
        self.qkv_w = nn.Parameter(uniform_init_(torch.empty(3, inner, config.model_dim)))
        self.out_w = nn.Parameter(torch.zeros(config.model_dim, inner))
        self.rotary = Rotary(config.head_dim, max_seq_len, config.rope_min_frequency)
        self.gate = AttentionGate(config) if config.attention_gate_dims else None
        self.scale = config.attn_scale
        self.normalize_values = config.normalize_values

    def forward(self, x: Tensor, value_embed: Tensor | None, value_lambdas: Tensor, mask: AttentionMask) -> Tensor:
        T = x.size(0)
        qkv = F.linear(x, self.qkv_w.flatten(0, 1).to(x.dtype)).view(T, 3 * self.num_heads, self.head_dim)
        q, k, v = qkv.chunk(3, dim=1)
        q, k = self.rotary(rms_norm(q)), self.rotary(rms_norm(k))
        if self.normalize_values:
            v = rms_norm(v)
        v = value_lambdas[0] * v
        if value_embed is not None:
            v = v + value_lambdas[1] * value_embed.view_as(v)
        y = attend(q, k, v, mask, self.scale)
        if self.gate is not None:
            y = y * self.gate(x)
        return F.linear(y.reshape(T, self.num_heads * self.head_dim), self.out_w.to(y.dtype))


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        hidden = config.mlp_ratio * config.model_dim
        self.in_transposed = config.mlp_in_stored_transposed
        in_shape = (config.model_dim, hidden) if self.in_transposed else (hidden, config.model_dim)
        self.fc_w = nn.Parameter(uniform_init_(torch.empty(in_shape), fan_in=config.model_dim))
        self.proj_w = nn.Parameter(torch.zeros(config.model_dim, hidden))

    def forward(self, x: Tensor) -> Tensor:
        fc = self.fc_w.to(x.dtype)
        hidden = x @ fc if self.in_transposed else F.linear(x, fc)
        return F.linear(F.relu(hidden).square(), self.proj_w.to(x.dtype))


class Block(nn.Module):
    """One layer. Per-layer differences (mixing weights, mask) come in as arguments so one compiled graph serves
    every layer of the same kind (with or without attention, with or without a value embedding)."""

    def __init__(self, config: ModelConfig, max_seq_len: int, has_attention: bool) -> None:
        super().__init__()
        self.attn = Attention(config, max_seq_len) if has_attention else None
        self.mlp = MLP(config)

    def forward(
        self,
        x: Tensor,
        x0: Tensor,
        value_embed: Tensor | None,
        residual_lambdas: Tensor,
        value_lambdas: Tensor,
        mask: AttentionMask,
    ) -> Tensor:
        x = residual_lambdas[0] * x + residual_lambdas[1] * x0
        if self.attn is not None:
            x = x + self.attn(rms_norm(x), value_embed, value_lambdas, mask)
        return x + self.mlp(rms_norm(x))


class _Fp8HeadCrossEntropy(torch.autograd.Function):
    """Mean softcapped cross-entropy of the head's logits x @ w.T, the matmuls in FP8 (Hopper).

    Forward: x and w are scaled into float8 e4m3 for the matmul; the bf16 logits go to the fused loss kernel.
    Backward: the loss kernel writes the logit gradient straight into float8 e5m2, row-major and transposed,
    scaled as if each row's upstream gradient were 1 (the mean's 1/N and the caller's factor go into the matmul
    scales instead, so the small per-row gradients of a mean do not underflow e5m2)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        x: Tensor,
        w: Tensor,
        targets: Tensor,
        scales: tuple[float, float, float],
        cap: float,
        kind: str,
    ) -> Tensor:
        x_scale, w_scale, _ = scales
        x8 = (x / x_scale).to(torch.float8_e4m3fn)
        w8 = (w / w_scale).to(torch.float8_e4m3fn)  # w stays fp32 here, so its gradient comes back in fp32
        one = torch.ones((), device=x.device, dtype=torch.float32)
        logits = torch._scaled_mm(
            x8, w8.t(), scale_a=one * x_scale, scale_b=one * w_scale, out_dtype=torch.bfloat16, use_fast_accum=True
        )
        losses, lse = softcapped_ce_forward(logits, targets, cap, kind)
        ctx.save_for_backward(x8, w8, logits, targets, lse)
        ctx.scales, ctx.cap, ctx.kind = scales, cap, kind
        return losses.mean()

    @staticmethod
    def backward(ctx, grad_loss: Tensor) -> tuple[Tensor, Tensor, None, None, None, None]:  # type: ignore[override]
        x8, w8, logits, targets, lse = ctx.saved_tensors
        x_scale, w_scale, grad_scale = ctx.scales
        # _scaled_mm wants its first operand row-major and its second column-major (the contraction dimension
        # contiguous in both), so grad_x needs the gradient (tokens, vocab) and grad_w its transpose
        # (vocab, tokens): the loss kernel writes both, sparing a transposing copy of the whole gradient
        g8, g8_t = softcapped_ce_backward_both_layouts(
            logits, targets, lse, ctx.cap, ctx.kind, torch.float8_e5m2, out_scale=1 / grad_scale
        )
        del logits
        g_scale = grad_loss.float() * (grad_scale / g8.size(0))
        one = torch.ones((), device=g8.device, dtype=torch.float32)
        grad_x = torch._scaled_mm(
            g8, w8.t().contiguous().t(), scale_a=g_scale, scale_b=one * w_scale, out_dtype=torch.bfloat16
        )
        grad_w = torch._scaled_mm(
            x8.t().contiguous(), g8_t.t(), scale_a=one * x_scale, scale_b=g_scale, out_dtype=torch.float32
        ).t()
        return grad_x, grad_w, None, None, None, None


def fp8_supported(device: torch.device) -> bool:
    """FP8 matmuls need Hopper (or Ada) and the Triton loss kernel."""
    return triton_available(device) and torch.cuda.get_device_capability(device) >= (8, 9)


class GPT(nn.Module):
    def __init__(self, config: ModelConfig, max_seq_len: int) -> None:
        super().__init__()
        if config.num_heads * config.head_dim != config.model_dim:
            raise ValueError("value embeddings need num_heads * head_dim == model_dim")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.model_dim)
        self.value_embeds = nn.ModuleList(
            nn.Embedding(config.vocab_size, config.model_dim) for _ in range(config.value_embed_count)
        )
        self.blocks = nn.ModuleList(
            Block(config, max_seq_len, has_attention=i not in config.layers_without_attention)
            for i in range(config.num_layers)
        )
        self.head_w = nn.Parameter(torch.zeros(config.vocab_size, config.model_dim))
        self.skip_weights = nn.Parameter(torch.ones(len(config.skip_connections)))
        # per layer: (weight of the residual stream, weight of x0) and (weight of v, weight of the value embedding)
        self.residual_lambdas = nn.Parameter(torch.tensor([[1.0, 0.0]] * config.num_layers))
        self.value_lambdas = nn.Parameter(torch.tensor([[0.5, 0.5]] * config.num_layers))
        # document ids of the current sequence, read by the FlexAttention mask of partially masked blocks
        self.register_buffer("doc_ids", torch.zeros(max_seq_len, dtype=torch.int32), persistent=False)
        self.use_fp8_head = False
        self._mask_mod_cache: MaskMod | None = None
        self._body: Callable[[Tensor, AttentionMask, AttentionMask], Tensor] = self.hidden_states
        self._block_lists: Callable[[Tensor], BlockLists] = document_block_lists

    def hidden_matrices(self) -> list[nn.Parameter]:
        """The parameters Muon optimises: every matrix inside the transformer blocks."""
        return [p for p in self.blocks.parameters() if p.ndim >= 2]

    def _mask_mod(self) -> MaskMod:
        """The mask function of partially allowed blocks, made once for the whole run (a new function each
        step would make the compiled graphs re-check it). It reads the document ids from a buffer. The window
        needs no test here: it is whole blocks, so the block lists alone enforce it."""
        if self._mask_mod_cache is None:
            doc_ids = self.doc_ids

            def document_causal(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
                return (q_idx >= kv_idx) & (doc_ids[q_idx] == doc_ids[kv_idx])

            self._mask_mod_cache = document_causal
        return self._mask_mod_cache

    def attention_masks(self, inputs: Tensor, window_blocks: int) -> tuple[AttentionMask, AttentionMask]:
        """Long and short (half) window masks: causal, within one document, and at most `window_blocks`
        blocks of 128 tokens back (the query's own block included)."""
        T = inputs.numel()
        docs = (inputs == EOT_TOKEN).cumsum(0).to(torch.int32)
        long_window, short_window = window_blocks, max(window_blocks // 2, 1)
        if inputs.device.type != "cuda":
            return dense_attention_mask(docs, long_window), dense_attention_mask(docs, short_window)
        self.doc_ids[:T].copy_(docs)
        mask_mod = self._mask_mod()
        # the document structure once, then each window only clamps its block counts
        lists = self._block_lists(docs)
        return windowed_block_mask(lists, long_window, mask_mod), windowed_block_mask(lists, short_window, mask_mod)

    def compile_body(self) -> None:
        """Compile everything from the embeddings to the final norm as one graph (the masks come in as inputs,
        the head and its loss run our own kernels): the skip connections, mixing weights and norms between
        layers fuse with the layers' own work, as they do in the record's whole-model compile. Compiled
        `dynamic=False`, it makes one graph per sequence length (training and validation)."""
        self._body = torch.compile(self.hidden_states, dynamic=False, fullgraph=True)
        self._block_lists = torch.compile(document_block_lists, dynamic=False)

    def forward(self, inputs: Tensor, targets: Tensor, window_blocks: int) -> Tensor:
        """Mean cross-entropy of predicting `targets` from `inputs` (both 1-D, one packed sequence)."""
        x = self._body(inputs, *self.attention_masks(inputs, window_blocks))
        if self.training or x.size(0) <= EVAL_SLICE_TOKENS:
            return self._loss(x, targets)
        # each slice's mean weighted by its tokens, as the last slice may be shorter than the others
        slices = zip(x.split(EVAL_SLICE_TOKENS), targets.split(EVAL_SLICE_TOKENS), strict=True)
        return torch.stack([self._loss(xs, ts) * ts.numel() for xs, ts in slices]).sum() / targets.numel()

    def hidden_states(self, inputs: Tensor, long_mask: AttentionMask, short_mask: AttentionMask) -> Tensor:
        """The normalised final residual stream, (T, model_dim), that the head turns into logits."""
        config = self.config
        compute_dtype = torch.bfloat16 if inputs.device.type == "cuda" else torch.float32
        value_embeds = [embed(inputs).to(compute_dtype) for embed in self.value_embeds]
        x = x0 = rms_norm(self.embed(inputs).to(compute_dtype))
        outputs: list[Tensor] = []
        for i, (block, ve_index) in enumerate(zip(self.blocks, config.value_embed_layers(), strict=True)):
            for k, (source, target) in enumerate(config.skip_connections):
                if target == i:
                    x = x + self.skip_weights[k].to(x.dtype) * outputs[source]
            mask = long_mask if i in config.long_window_layers else short_mask
            value_embed = None if ve_index is None else value_embeds[ve_index]
            x = block(x, x0, value_embed, self.residual_lambdas[i].to(x.dtype), self.value_lambdas[i].to(x.dtype), mask)
            outputs.append(x)
        return rms_norm(x)

    def _loss(self, x: Tensor, targets: Tensor) -> Tensor:
        cap, kind = self.config.logit_softcap, self.config.softcap_kind
        if self.training and self.use_fp8_head:
            return _Fp8HeadCrossEntropy.apply(x.contiguous(), self.head_w, targets, self.config.fp8_scales, cap, kind)
        logits = F.linear(x, self.head_w.to(x.dtype))
        return softcapped_cross_entropy(logits, targets, cap, kind)


def dense_attention_mask(docs: Tensor, window_blocks: int) -> Tensor:
    """Boolean (T, T) mask, True where query q may attend to key k."""
    pos = torch.arange(docs.numel(), device=docs.device)
    q, k = pos[:, None], pos[None, :]
    in_window = (q // ATTENTION_BLOCK_SIZE - k // ATTENTION_BLOCK_SIZE) < window_blocks
    return (q >= k) & (docs[:, None] == docs[None, :]) & in_window


BlockLists = tuple[Tensor, Tensor, Tensor, Tensor]  # partial counts, partial indices, full counts, full indices


def _most_recent_first(selected: Tensor) -> tuple[Tensor, Tensor]:
    """Dense (Q, K) boolean block selection -> (count per query block, key block indices: the selected ones
    first, most recent (highest index) first), shaped (1, 1, Q) and (1, 1, Q, K) as BlockMask wants them."""
    counts = selected.sum(dim=-1, dtype=torch.int32)
    kv_index = torch.arange(selected.size(-1), device=selected.device, dtype=torch.int32)
    order = torch.where(selected, kv_index, -1).sort(dim=-1, descending=True).indices.to(torch.int32)
    return counts[None, None].contiguous(), order[None, None].contiguous()


def document_block_lists(docs: Tensor) -> BlockLists:
    """Which key blocks each query block of 128 tokens attends to under causal attention within documents,
    without any window: partly allowed blocks (the mask function decides token by token) and wholly allowed
    ones (strictly earlier blocks inside the query block's one document), each list most recent first."""
    n = docs.numel() // ATTENTION_BLOCK_SIZE
    blocks = docs.view(n, ATTENTION_BLOCK_SIZE)
    first, last = blocks[:, 0], blocks[:, -1]
    idx = torch.arange(n, device=docs.device)
    qb, kb = idx[:, None], idx[None, :]
    # some pair of tokens may attend: a causal pair whose key block's documents reach the query block's first one
    some = (qb >= kb) & (last[None, :] >= first[:, None])
    # every pair may attend: strictly earlier block, both blocks inside one and the same document
    single_doc = first == last
    every = (qb > kb) & single_doc[:, None] & single_doc[None, :] & (first[:, None] == first[None, :])
    return (*_most_recent_first(some & ~every), *_most_recent_first(every))


def windowed_block_mask(lists: BlockLists, window_blocks: int, mask_mod: MaskMod | None) -> BlockMask:
    """The BlockMask of `document_block_lists` limited to `window_blocks` blocks (the query's own included).

    A query block's wholly allowed blocks run back contiguously from the one before it, so the window keeps
    the `window_blocks - 1` most recent of them; its partly allowed blocks are its own block and, if they are
    within the window, the blocks where its document(s) start, so the window keeps as many of the most
    recent ones as the whole blocks leave room for, and always the query's own block. Counting on the lists
    being most recent first, this is two clamps on the counts: no new sort per window."""
    partial_counts, partial_indices, full_counts, full_indices = lists
    return BlockMask.from_kv_blocks(
        torch.clamp_max(partial_counts, torch.clamp_min(window_blocks - full_counts, 1)),
        partial_indices,
        torch.clamp_max(full_counts, window_blocks - 1),
        full_indices,
        BLOCK_SIZE=ATTENTION_BLOCK_SIZE,
        mask_mod=mask_mod,
    )


def block_attention_mask(docs: Tensor, window_blocks: int, mask_mod: MaskMod | None) -> BlockMask:
    """The same mask as `dense_attention_mask`, as a FlexAttention BlockMask built directly from block ranges
    of document ids (cheaper than evaluating the mask on every block pair)."""
    return windowed_block_mask(document_block_lists(docs), window_blocks, mask_mod)
