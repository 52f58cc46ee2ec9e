"""The GPT of the 2026-05 recipe (record 84, `2026-05-19_FP8MLPUpProj`), readable top to bottom.

One packed sequence of documents (their boundaries in `cu_seqlens`), through 11 pre-norm layers:

    x0 = norm(smear(embed(tokens)))                  the previous token smeared in (record 34)
    x  = x0 + l_0 * bigram(tokens)                   a hash embedding of token pairs (record 62)
    per layer i:
      x = r_i * x + p_i * attention_i(norm(x or the saved x)) + a_i * x0 + b_i * bigram
                                                     (layer 6 has no attention: it adds the gated output of
                                                     layer 3 instead; layers after 7 attend to layer 7's
                                                     output, the single saved activation of record 77)
      x = r'_i * x + p'_i * mlp_i(norm(x))
    x  = norm(x - backout * (layer 7's output))      backout (record 40)
    loss = multi-token softcapped cross-entropy of x @ head

Attention (layers/attention.py) uses YaRN rotary embeddings, paired heads on layers 0, 2, 5 and 9, the partial
key offset on the long-window layers 3 and 10, gated value embeddings on layers 1, 2, 8, 9 and 10 and a sparse
output gate. The embedding is tied to the head until the trainer unties them (at 2/3 of training); the
optimisers see the parameters through `adam_groups` and `muon_groups`.

tests/test_model_2026.py holds it to record 84's own model on CPU (same weights, same batch: the same losses
and gradients) and, on a GPU, its FP8 paths to bf16 and the compiled model to the eager one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from speedrun.trainer.config import Model2026Config
from speedrun.trainer.flash_flex import sequence_ids
from speedrun.trainer.layers.attention import ATTENTION_BLOCK, Attention, Documents, Yarn, rms_norm
from speedrun.trainer.layers.embeddings import Smear
from speedrun.trainer.layers.head import Fp8HeadMtpLoss, eval_losses, mtp_softcapped_cross_entropy
from speedrun.trainer.layers.mlp import MLP

EVAL_SLICE_ROWS = 32768  # rows of logits evaluated at a time (6.6 GiB in fp32)


class GPT2026(nn.Module):
    def __init__(self, config: Model2026Config, max_seq_len: int, micro_steps_per_step: int = 8) -> None:
        super().__init__()
        config.validate()
        self.config = c = config
        L, d, H, V = c.num_layers, c.model_dim, c.num_heads, c.vocab_size
        self.head = nn.Parameter(torch.empty(d, V).normal_(0, c.head_init_std))  # logits = x @ head
        self.embed = nn.Parameter(self.head.detach().t().clone())  # tied to the head until the trainer unties it
        self.value_embeds = nn.Parameter(c.value_embed_init_std * torch.randn(len(c.value_embed_layers), V, d))
        self.bigram_embed = nn.Parameter(torch.zeros(c.bigram_vocab_size, d)) if c.bigram_vocab_size else None
        self.smear = Smear(c.gate_dims) if c.smear else None
        self.attention = nn.ModuleDict(
            {
                str(i): Attention(
                    d, H, c.head_dim, i in c.paired_head_layers, c.key_offset and i in c.long_window_layers
                )
                for i in c.attention_layers
            }
        )
        self.mlps = nn.ModuleList(MLP(d, c.mlp_ratio * d) for _ in range(L))
        self.rotary = Yarn(c.head_dim, max_seq_len, c.rope_min_frequency, c.attn_scale, c.yarn_alpha, c.yarn_beta)
        # gates: each reads the first gate_dims dimensions of its input; all start at zero (sigmoid 1/2)
        self.attention_gates = nn.Parameter(torch.zeros(len(c.attention_layers), H, c.gate_dims))
        self.value_embed_gates = nn.Parameter(torch.zeros(len(c.value_embed_layers), H, c.gate_dims))
        self.skip_gate = nn.Parameter(torch.zeros(1, c.gate_dims))
        self.skip_lambda = nn.Parameter(torch.tensor(c.skip_lambda_init))
        # per-layer mixing weights
        self.attention_lambdas = nn.Parameter(torch.tensor([c.attention_lambdas_init] * L))
        self.residual_lambdas = nn.Parameter(torch.full((L, 2), c.residual_lambda_init))  # [attention, mlp]
        self.post_lambdas = nn.Parameter(torch.ones(L, 2))
        self.x0_lambdas = nn.Parameter(torch.zeros(L))
        self.bigram_lambdas = nn.Parameter(torch.full((L,), c.bigram_lambda_init))
        self.backout_lambda = nn.Parameter(torch.tensor(c.backout_lambda_init))
        x_s, w_s, grad_s = c.fp8_head_scales
        # the head's gradient arrives divided by the micro-steps of a step: so is its FP8 scale
        self.fp8_head_scales = (x_s, w_s, grad_s / micro_steps_per_step)
        # FP8 in training for the head's matmuls and the MLPs' up-projections: the trainer turns them on, on Hopper
        self.fp8_head = self.fp8_mlp = False

    # ------------------------------------------------------------------------------------ optimiser groups

    def adam_groups(self) -> dict[str, list[nn.Parameter]]:
        """The parameters Adam steps, by the group names of the recipe's `CautiousAdamConfig`."""
        groups = {
            "scalars": [self.attention_lambdas, self.backout_lambda, self.skip_lambda],
            "smear_gate": [],
            "skip_gate": [self.skip_gate],
            "attention_gates": [self.attention_gates],
            "value_embed_gates": [self.value_embed_gates],
            "head": [self.head],
            "bigram_embed": [self.bigram_embed] if self.bigram_embed is not None else [],
            "post_lambdas": [self.post_lambdas],
            "x0_lambdas": [self.x0_lambdas],
            "bigram_lambdas": [self.bigram_lambdas],
            "residual_lambdas": [self.residual_lambdas],
            "value_embeds": [self.value_embeds],
            "embed": [self.embed],
        }
        if self.smear is not None:
            groups["scalars"].append(self.smear.strength)
            groups["smear_gate"].append(self.smear.gate)
        return groups

    def muon_groups(self) -> dict[str, list[nn.Parameter]]:
        """The matrices NorMuon steps, one group per shape and learning rate."""
        return {
            "attention_qk": [a.qk for a in self.attention.values()],
            "attention_vo": [a.vo for a in self.attention.values()],
            "mlp_in": [m.fc for m in self.mlps],
            "mlp_out": [m.proj for m in self.mlps],
        }

    # --------------------------------------------------------------------------------------------- forward

    def forward(
        self,
        inputs: Tensor,
        targets: Tensor,
        cu_seqlens: Tensor,
        bigram_inputs: Tensor,
        windows: tuple[int, int],
        mtp_weights: tuple[float, ...] | None = None,
    ) -> Tensor:
        """Per-token losses of one packed sequence: multi-token in training (`mtp_weights`), next-token in
        evaluation. `windows` are the (short, long) attention windows in blocks of 128 tokens."""
        ids = sequence_ids(cu_seqlens, inputs.numel())  # outside the compiled graph: see `document_mask`
        x = self.hidden_states(inputs, cu_seqlens, ids, bigram_inputs, windows)
        if self.training:
            assert mtp_weights is not None
            if self.fp8_head and x.is_cuda:
                return Fp8HeadMtpLoss.apply(
                    x, self.head, targets, mtp_weights, self.config.logit_rescale, self.fp8_head_scales
                )
            logits = x @ self.head.type_as(x)
            return mtp_softcapped_cross_entropy(logits, targets, mtp_weights, self.config.logit_rescale)
        # in slices: a validation micro-batch of 262,144 tokens would need 49 GiB for its fp32 logits at once;
        # record 84's compiler fuses that away, eager PyTorch does not
        rows = x.view(-1, x.size(-1))
        return torch.cat([
            eval_losses(rows[i : i + EVAL_SLICE_ROWS] @ self.head.type_as(x), targets[i : i + EVAL_SLICE_ROWS],
                        self.config.logit_rescale)
            for i in range(0, rows.size(0), EVAL_SLICE_ROWS)
        ])  # fmt: skip

    def hidden_states(
        self, inputs: Tensor, cu_seqlens: Tensor, ids: Tensor, bigram_inputs: Tensor, windows: tuple[int, int]
    ) -> Tensor:
        c = self.config
        short, long = (w * ATTENTION_BLOCK for w in windows)
        x = F.embedding(inputs, self.embed)
        if self.smear is not None:
            x = self.smear(x)
        x = x0 = rms_norm(x)
        bigram = F.embedding(bigram_inputs, self.bigram_embed) if self.bigram_embed is not None else None
        # the per-layer mixing weights are applied in bf16, as the record applies them
        residual, post = self.residual_lambdas.bfloat16(), self.post_lambdas.bfloat16()
        x0_lambdas, bigram_lambdas = self.x0_lambdas.bfloat16(), self.bigram_lambdas.bfloat16()
        if bigram is not None:
            x = x + bigram * bigram_lambdas[0]
        value_embeds = self.value_embeds[:, inputs]
        skip_gate = (
            torch.sigmoid(self.skip_lambda) * 2 * torch.sigmoid(F.linear(x0[..., : c.gate_dims], self.skip_gate))
        )
        saved = skipped = None
        attention_index = 0
        documents = Documents(cu_seqlens, ids, c.attention if cu_seqlens.is_cuda else "dense")
        for i in range(c.num_layers):
            if str(i) in self.attention:
                source = saved if saved is not None else x
                ve = c.value_embed_layers.index(i) if i in c.value_embed_layers else None
                attended = self.attention[str(i)](
                    rms_norm(source),
                    self.attention_lambdas[i],
                    self.rotary,
                    documents,
                    long if i in c.long_window_layers else short,
                    self.attention_gates[attention_index],
                    value_embeds[ve] if ve is not None else None,
                    self.value_embed_gates[ve] if ve is not None else None,
                )
                attention_index += 1
                injected = x0 * x0_lambdas[i]
                if bigram is not None and i > 0:
                    injected = injected + bigram * bigram_lambdas[i]
                x = residual[i, 0] * x + post[i, 0] * attended + injected
            elif c.skip is not None and i == c.skip[1]:
                x = x + skip_gate * skipped
            x = residual[i, 1] * x + post[i, 1] * self.mlps[i](rms_norm(x), fp8=self.fp8_mlp and self.training)
            if c.skip is not None and i == c.skip[0]:
                skipped = x
            if i == c.backout_layer:
                saved = x
        if saved is not None:
            x = x - self.backout_lambda * saved
        return rms_norm(x)
