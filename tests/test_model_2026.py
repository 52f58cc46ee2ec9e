"""The 2026-05 recipe's GPT against record 84's own model classes, taken from its published log (see
tests/record84.py for why running them is allowed in tests): on CPU, at a small width and vocabulary, with the
record's weights copied into ours, the same batch gives the same per-token losses (evaluation and multi-token
training) and the same gradient for every parameter. The record attends through the FlexAttention stand-in of
Flash Attention 3 (tested against a dense reference in tests/test_flash_flex.py), ours on CPU through that
dense reference; the record's fused loss
kernel is CUDA, so in training both sides use our multi-token loss, itself tested against its definition here.
"""

from __future__ import annotations

import dataclasses
import types
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from speedrun.trainer import flash_flex, model_2026
from speedrun.trainer.config import Model2026Config, get_config
from speedrun.trainer.layers import head
from speedrun.trainer.layers.embeddings import bigram_hash
from speedrun.trainer.layers.head import mtp_losses_reference, mtp_softcapped_cross_entropy, slice_losses_and_grad
from speedrun.trainer.model_2026 import GPT2026
from tests.record84 import load

pytestmark = pytest.mark.archive

VOCAB, BIGRAM_VOCAB, DIM, HEADS, HEAD_DIM, T = 1000, 1536, 96, 6, 16, 512
RECORD_CLASSES = [
    "norm", "CastedLinearT", "Yarn", "AttnArgs", "CausalSelfAttention", "next_multiple_of_n",
    "ForwardScheduleConfig", "GPT", "get_bigram_hash",
]  # fmt: skip


def mtp_reference_apply(x, targets, mtp_weights, weight, x_s, w_s, grad_s, grad_scale):
    """Stands in for the record's CUDA FusedSoftcappedCrossEntropy: its function, without FP8."""
    weights = mtp_weights.tolist()
    return mtp_softcapped_cross_entropy(x @ weight.type_as(x), targets, weights, (23.0, 5.0, 7.5))


@pytest.fixture(scope="module")
def record(upstream_records: Path) -> dict:
    import os

    os.environ["DISABLE_FP8"] = "1"  # the record's switch for its FP8 paths: off on CPU
    fused = types.SimpleNamespace(apply=mtp_reference_apply)
    interface = flash_flex.get_kernel("kernels-community/flash-attn3").flash_attn_interface
    replace = {
        # the record's loader builds bigram indices in pinned memory, which needs CUDA; on CPU, ordinary memory
        "pin_memory=True": "pin_memory=False",
        # the partial key offset shifts keys in place from an overlapping slice of themselves: compiled, as the
        # record always runs, that reads the keys before the shift; run eagerly on CPU it would read the ones
        # it has just written and copy the first key everywhere. The copy makes eager mode read them before too.
        "k[:, :-1, :, self.head_dim // 2:]": "k[:, :-1, :, self.head_dim // 2:].clone()",
    }
    scope = load(
        upstream_records,
        RECORD_CLASSES,
        replace=replace,
        flash_attn_interface=interface,
        FusedSoftcappedCrossEntropy=fused,
    )
    scope["args"].bigram_vocab_size = BIGRAM_VOCAB
    return scope


def small_config() -> Model2026Config:
    base = get_config("small", recipe="2026-05").model
    return dataclasses.replace(
        base, model_dim=DIM, num_heads=HEADS, head_dim=HEAD_DIM, vocab_size=1024, bigram_vocab_size=BIGRAM_VOCAB
    )


def copy_record_weights(theirs: torch.nn.Module, ours: GPT2026) -> None:
    """Our parameters set to the record's, through the mapping between its banks and our layers."""
    L = ours.config.num_layers
    scalars = theirs.scalars.detach()
    with torch.no_grad():
        ours.head.copy_(theirs.lm_head.weight)
        ours.embed.copy_(theirs.embed.weight)
        ours.value_embeds.copy_(theirs.value_embeds.view(5, -1, DIM))
        ours.bigram_embed.copy_(theirs.bigram_embed.weight)
        ours.smear.gate.copy_(theirs.smear_gate.weight)
        ours.skip_gate.copy_(theirs.skip_gate.weight)
        ours.attention_lambdas.copy_(scalars[: 2 * L].view(L, 2))
        ours.smear.strength.copy_(scalars[2 * L])
        ours.backout_lambda.copy_(scalars[2 * L + 1])
        ours.skip_lambda.copy_(scalars[2 * L + 2])
        ours.attention_gates.copy_(theirs.attn_gate_bank)
        ours.value_embed_gates.copy_(theirs.ve_gate_bank)
        for name in ("post_lambdas", "x0_lambdas", "bigram_lambdas"):
            getattr(ours, name).copy_(getattr(theirs, name))
        ours.residual_lambdas.copy_(theirs.resid_lambdas)
        for a, attention in enumerate(ours.attention.values()):
            attention.qk.copy_(theirs.qk_bank[6 * a : 6 * a + 6])
            attention.vo.copy_(theirs.vo_bank[2 * a : 2 * a + 2])
        for i, mlp in enumerate(ours.mlps):
            mlp.fc.copy_(theirs.mlp_bank[i, 0])
            mlp.proj.copy_(theirs.mlp_bank[i, 1])


def record_gradients(theirs: torch.nn.Module, L: int) -> dict[str, torch.Tensor]:
    """The record's gradients, named and shaped as ours."""
    return as_ours({name: p.grad for name, p in theirs.named_parameters()}, L)


def as_ours(g: dict[str, torch.Tensor], L: int) -> dict[str, torch.Tensor]:
    """Tensors of the record's parameters (by its names), named and shaped as ours."""
    scalars = g["scalars"]
    grads = {
        "head": g["lm_head.weight"],
        "embed": g["embed.weight"],
        "value_embeds": g["value_embeds"].view(5, -1, DIM),
        "bigram_embed": g["bigram_embed.weight"],
        "smear.gate": g["smear_gate.weight"],
        "skip_gate": g["skip_gate.weight"],
        "attention_lambdas": scalars[: 2 * L].view(L, 2),
        "smear.strength": scalars[2 * L],
        "backout_lambda": scalars[2 * L + 1],
        "skip_lambda": scalars[2 * L + 2],
        "attention_gates": g["attn_gate_bank"],
        "value_embed_gates": g["ve_gate_bank"],
        "post_lambdas": g["post_lambdas"],
        "x0_lambdas": g["x0_lambdas"],
        "bigram_lambdas": g["bigram_lambdas"],
        "residual_lambdas": g["resid_lambdas"],
    }
    for a, layer in enumerate(i for i in range(L) if i != 6):
        grads[f"attention.{layer}.qk"] = g["qk_bank"][6 * a : 6 * a + 6]
        grads[f"attention.{layer}.vo"] = g["vo_bank"][2 * a : 2 * a + 2]
    for i in range(L):
        grads[f"mlps.{i}.fc"] = g["mlp_bank"][i, 0]
        grads[f"mlps.{i}.proj"] = g["mlp_bank"][i, 1]
    return grads


def test_the_bigram_hash_is_the_records(record: dict) -> None:
    tokens = torch.randint(0, 50257, (4096,), generator=torch.Generator().manual_seed(5)).to(torch.int32)
    record["args"].bigram_vocab_size = 50304 * 5
    try:
        theirs = record["get_bigram_hash"](tokens)
    finally:
        record["args"].bigram_vocab_size = BIGRAM_VOCAB
    assert torch.equal(bigram_hash(tokens, 50304 * 5), theirs.to(torch.int32))


def compare_with_record(
    record: dict, training: bool, t: int, cu: torch.Tensor, long_windows: list[int], mtp: list[float] | None
) -> None:
    """Ours and the record's model on the same weights and batch of `t` tokens (documents from `cu`): the same
    per-token losses and, in training, the same gradient of every parameter. `long_windows`: the long window
    of each stage reached so far, in blocks (YaRN rescales the rotary embedding at each growth, on both sides);
    the short window is the stage's too."""
    torch.manual_seed(0)
    theirs = record["GPT"](VOCAB, 11, HEADS, HEAD_DIM, DIM, max_seq_len=t).float()
    with torch.no_grad():  # the record starts several weights at zero: give every one a value, so each path counts
        for p in theirs.parameters():
            p.add_(0.02 * torch.randn_like(p))
    for yarn in (theirs.yarn, theirs.yarn_paired_head):  # .float() made its rotary tables fp32; it keeps them bf16
        yarn.factor1, yarn.factor2 = yarn.factor1.bfloat16(), yarn.factor2.bfloat16()
    ours = GPT2026(small_config(), max_seq_len=t).float()
    copy_record_weights(theirs, ours)
    for old, new in pairwise(long_windows):
        theirs.yarn.apply(old * 128, new * 128)
        theirs.yarn_paired_head.apply(old * 128, new * 128)
        ours.rotary.extend(old * 128, new * 128)
    windows = (SHORT_WINDOW[long_windows[-1]], long_windows[-1])
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, VOCAB, (t + 1,), generator=generator)
    inputs, targets = tokens[:-1].to(torch.int32), tokens[1:]
    bigrams = bigram_hash(inputs, BIGRAM_VOCAB)
    weights = torch.tensor(mtp) if mtp is not None else None
    schedule = record["ForwardScheduleConfig"](
        mtp_weights=weights, ws_short=windows[0] * 128, ws_long=windows[1] * 128, train_max_seq_len=t
    )
    theirs.train(training)
    ours.train(training)
    their_losses = theirs(inputs, targets, cu, bigrams, schedule)
    our_losses = ours(inputs, targets, cu, bigrams, windows, tuple(mtp) if mtp is not None else None)
    # ours attends through a dense mask on CPU, the record's through the stand-in's eager FlexAttention: the
    # same function, summed in another order
    torch.testing.assert_close(our_losses, their_losses, rtol=1e-4, atol=1e-4)
    if not training:
        return
    their_losses.sum().backward()
    our_losses.sum().backward()
    expected = record_gradients(theirs, 11)
    ours_named = dict(ours.named_parameters())
    assert set(expected) == set(ours_named), set(expected) ^ set(ours_named)
    errors = {
        name: float((ours_named[name].grad - grad).norm() / grad.norm().clamp_min(1e-12))
        for name, grad in expected.items()
    }
    assert max(errors.values()) < 1e-4, sorted(errors.items(), key=lambda e: -e[1])[:5]
    assert all(grad.norm() > 0 for grad in expected.values())  # every path carried a gradient


# the short window of each stage, by its long window (record 84's stages and extension)
SHORT_WINDOW = {3: 1, 7: 3, 11: 5, 13: 6}


@pytest.mark.parametrize("training", [False, True], ids=["evaluation", "training"])
def test_losses_and_gradients_are_the_records_on_the_same_weights(
    record: dict, training: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_2026, "EVAL_SLICE_ROWS", 100)  # evaluation in slices, the last one partial
    cu = torch.tensor([0, 100, 101, 350, T] + [T] * 3, dtype=torch.int32)  # padded as the record pads
    compare_with_record(record, training, T, cu, [3], [1.0, 0.5, 0.25] if training else None)


@pytest.mark.parametrize(
    ("long_windows", "mtp"),
    [([3], [1.0, 0.5, 0.25]), ([3, 7], [1.0, 0.5]), ([3, 7, 11], [1.0]), ([3, 7, 11, 13], [1.0])],
    ids=["stage-1", "stage-2", "stage-3", "extension"],
)
def test_training_is_the_records_at_each_batch_stage(record: dict, long_windows: list[int], mtp: list[float]) -> None:
    """Each stage's windows (grown through YaRN from the first stage's) and multi-token weights, on 2,048 tokens
    whose documents are longer than the windows, so that every window cuts."""
    t = 2048
    cu = torch.tensor([0, 1700, 1701, t] + [t] * 4, dtype=torch.int32)
    compare_with_record(record, True, t, cu, long_windows, mtp)


@pytest.mark.parametrize("paired", [False, True], ids=["plain", "paired"])
def test_flex_documents_attend_as_the_dense_reference_and_share_one_mask_per_window(paired: bool) -> None:
    # On CPU FlexAttention runs its forward eagerly through the same block masks as on a GPU.
    from speedrun.trainer.flash_flex import sequence_ids
    from speedrun.trainer.layers.attention import Documents

    cu = torch.tensor([0, 100, 130, 384, 384], dtype=torch.int32)
    n = 2 * 384 if paired else 384
    generator = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(n, 2, 16, generator=generator) for _ in range(3))
    ids = sequence_ids(cu, 384)
    flex, dense = Documents(cu, ids, "flex"), Documents(cu, ids, "dense")
    for window in (128, 256, -1, 128):
        got = flex.attend(q, k, v, window, 0.1, paired)
        torch.testing.assert_close(got, dense.attend(q, k, v, window, 0.1, paired), rtol=1e-5, atol=1e-5)
    assert sorted(flex.masks) == [(paired, -1), (paired, 128), (paired, 256)]


def test_the_masks_and_flex_attention_trace_into_one_graph() -> None:
    # inside the compiled forward the masks are built once per window and the attention is part of the graph
    from speedrun.trainer.flash_flex import sequence_ids
    from speedrun.trainer.layers.attention import Documents

    graphs = []

    def count(gm: torch.fx.GraphModule, inputs: list) -> object:
        graphs.append(gm)
        return gm.forward

    def two_layers(q: torch.Tensor, cu: torch.Tensor) -> tuple[torch.Tensor, int]:
        documents = Documents(cu, sequence_ids(cu, q.size(0)), "flex")
        y = documents.attend(q, q, q, 128, 0.1, False)
        return documents.attend(y, q, q, 128, 0.1, False), len(documents.masks)

    q = torch.randn(256, 2, 16)
    cu = torch.tensor([0, 200, 256], dtype=torch.int32)
    y, masks = torch.compile(two_layers, backend=count, fullgraph=True)(q, cu)
    assert len(graphs) == 1 and masks == 1
    torch.testing.assert_close(y, two_layers(q, cu)[0])


def test_the_multi_token_loss_and_its_gradient_are_its_definition() -> None:
    generator = torch.Generator().manual_seed(3)
    logits = (3 * torch.randn(37, 64, generator=generator)).requires_grad_(True)
    targets = torch.randint(0, 64, (37,), generator=generator)
    weights = (1.0, 0.5, 0.2)
    losses = mtp_softcapped_cross_entropy(logits, targets, weights, (23.0, 5.0, 7.5))
    reference_logits = logits.detach().clone().requires_grad_(True)
    expected = mtp_losses_reference(reference_logits, targets, weights, (23.0, 5.0, 7.5))
    # the sigmoid is kept in bf16 between the forward and the backward, as the record's kernel keeps it
    torch.testing.assert_close(losses, expected, rtol=2e-2, atol=2e-2)
    upstream = torch.rand(37, generator=generator)
    (grad,) = torch.autograd.grad((losses * upstream).sum(), logits)
    (want,) = torch.autograd.grad((expected * upstream).sum(), reference_logits)
    torch.testing.assert_close(grad, want, rtol=2e-2, atol=2e-3)
    # the last rows predict only the tokens inside the batch
    assert float(losses[-1]) == pytest.approx(float(expected[-1]), rel=2e-2)


def test_the_compiled_loss_slice_computes_what_the_eager_one_does() -> None:
    """On a GPU each slice of the multi-token loss runs compiled; compiled (on the GPU where there is one, as
    training compiles it, else for the CPU), it gives the eager losses and gradient."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and torch.__version__ < "2.13":
        # torch 2.11 failed this on the CPU (2.13 passes); Inductor's C++ code keeps the bf16 roundings that
        # emulate_precision_casts asks for only since PyTorch #182882 and #185847, its Triton code before them
        pytest.skip("the CPU compile honours emulate_precision_casts from torch 2.13; run it on a GPU")
    generator = torch.Generator().manual_seed(5)
    logits = (3 * torch.randn(64, 96, generator=generator)).to(torch.bfloat16).to(device)
    targets_ahead = torch.randint(0, 96, (64, 3), generator=generator).to(device)
    row_weights = torch.tensor([1.0, 0.5, 0.25]).repeat(64, 1)
    row_weights[-1, 1:] = 0  # the last rows' tokens past the batch
    row_weights[-2, 2] = 0
    row_weights = row_weights.to(device)
    abc = (23.0, 5.0, 7.5)
    eager = slice_losses_and_grad(logits, targets_ahead, row_weights, abc)
    compile_slice = torch.compile(slice_losses_and_grad, dynamic=False, options=head.COMPILE_OPTIONS)
    compiled = compile_slice(logits, targets_ahead, row_weights, abc)
    torch.testing.assert_close(compiled[0], eager[0], rtol=1e-5, atol=1e-4)
    assert compiled[1].dtype == torch.bfloat16
    torch.testing.assert_close(compiled[1].float(), eager[1].float(), rtol=2e-2, atol=2e-3)


# ------------------------------------------------------------------------------------------------- FP8 paths


def test_fp8_up_projection_quantises_both_operands_and_passes_bf16_gradients_back() -> None:
    from speedrun.trainer.layers.mlp import Fp8UpProjection

    generator = torch.Generator().manual_seed(7)
    x = torch.randn(64, 32, generator=generator).requires_grad_(True)
    w = (0.1 * torch.randn(48, 32, generator=generator)).requires_grad_(True)
    y = Fp8UpProjection.apply(x, w)
    exact = x @ w.t()
    error = (y - exact).norm() / exact.norm()
    assert 1e-4 < error < 0.06  # e4m3 keeps 3 mantissa bits: visible, small
    upstream = torch.randn(64, 48, generator=generator)
    gx, gw = torch.autograd.grad((y * upstream).sum(), (x, w))
    torch.testing.assert_close(gx, upstream @ w.detach())  # the backward pass is the unquantised one
    torch.testing.assert_close(gw, upstream.t() @ x.detach())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp8_up_projection_matches_bf16_on_gpu() -> None:  # the FP8 head: tests/test_mtp_kernels.py
    from speedrun.trainer.layers.mlp import Fp8UpProjection

    torch.manual_seed(9)
    x = torch.randn(4096, 768, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    w1 = (0.02 * torch.randn(3072, 768, device="cuda", dtype=torch.bfloat16)).requires_grad_(True)
    y = Fp8UpProjection.apply(x, w1)
    exact = x.float() @ w1.float().t()
    assert (y.float() - exact).norm() / exact.norm() < 0.06
    (y.float().square().mean() / 8).backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(w1.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_compiled_model_trains_as_the_eager_one_on_gpu() -> None:
    config = dataclasses.replace(
        small_config(), vocab_size=50304, bigram_vocab_size=50304 * 5, attention="flex"
    )  # built here, not by the trainer, so nothing settles "auto"
    torch.manual_seed(0)
    eager = GPT2026(config, max_seq_len=4096).cuda()
    compiled = GPT2026(config, max_seq_len=4096).cuda()
    compiled.load_state_dict(eager.state_dict())
    compiled.hidden_states = torch.compile(compiled.hidden_states, dynamic=False)
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 50257, (4097,), generator=generator).cuda()
    cu = torch.tensor([0, 1000, 1007, 2500, 4096] + [4096] * 3, dtype=torch.int32, device="cuda")
    inputs, targets = tokens[:-1].to(torch.int32), tokens[1:]
    bigrams = bigram_hash(inputs, config.bigram_vocab_size)
    weights = torch.tensor([1.0, 0.5, 0.25], device="cuda")
    losses = [m(inputs, targets, cu, bigrams, (3, 7), weights) for m in (eager, compiled)]
    torch.testing.assert_close(losses[1], losses[0], rtol=2e-2, atol=2e-2)
    for loss in losses:
        loss.sum().backward()
    # a scalar's gradient sums over every token in bf16, so it gets a wider margin than a matrix's
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        tolerance = 0.05 if a.numel() > 64 else 0.2
        assert (a.grad - b.grad).norm() <= tolerance * a.grad.norm() + 1e-6, name
    every = [torch.cat([p.grad.flatten() for p in m.parameters()]) for m in (eager, compiled)]
    assert (every[0] - every[1]).norm() <= 0.05 * every[0].norm()
    # validation: no autograd, so the compiler builds another graph (one that once failed to compile)
    with torch.no_grad():
        for m in (eager, compiled):
            m.eval()
        losses = [m(inputs, targets, cu, bigrams, (3, 7)) for m in (eager, compiled)]
    torch.testing.assert_close(losses[1], losses[0], rtol=2e-2, atol=2e-2)


# -------------------------------------------------------------------------------------- one optimiser step


def test_one_step_of_each_optimizer_is_the_records(upstream_records: Path, record: dict) -> None:
    """Record 84's TrainingManager and NorMuonAndAdam stepping its model, ours stepping ours, from the same
    weights and gradients: step 0 (NorMuon only), step 1 (Adam too, the embedding tied to the head), the untie
    step 963 (Adam's head state copied to the embedding) and step 965 (the two apart). Equal to the bit."""
    from speedrun.trainer.config import variant
    from speedrun.trainer.loop_2026 import build_optimizers, optimizer_step
    from speedrun.trainer.stages import plan

    names = ["ParamConfig", "NorMuonAndAdam", "polar_express_coeffs", "polar_express", "_sparse_comms_active",
             "TrainingStage", "TrainingSchedule", "TRAINING_STAGES", "training_schedule", "get_muon_momentum",
             "TrainingManager"]  # fmt: skip
    args = types.SimpleNamespace(num_scheduled_iterations=1445, num_extension_iterations=40)
    # PyTorch's CPU build has no shifts of uint32 (the record's mantissa tracking): the same bits, as int32.
    # The record's Triton transposes are the transposes they compute.
    optim = load(
        upstream_records,
        names,
        replace={"torch.uint32": "torch.int32"},
        args=args,
        transpose_add=lambda src, dst: dst.add_(src.t()),
        transpose_copy=lambda src, dst: dst.copy_(src.t()),
    )
    torch.manual_seed(0)
    theirs = record["GPT"](VOCAB, 11, HEADS, HEAD_DIM, DIM, max_seq_len=T)
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.02 * torch.randn_like(p))
    # as the record's main stores them: tables, head and gates in bf16, the matrix banks in bf16 (plus mantissa)
    for p in (theirs.embed.weight, theirs.lm_head.weight, theirs.bigram_embed.weight, theirs.smear_gate.weight,
              theirs.skip_gate.weight, theirs.attn_gate_bank, theirs.ve_gate_bank, theirs.qk_bank, theirs.vo_bank,
              theirs.mlp_bank, theirs.value_embeds):  # fmt: skip
        p.data = p.data.bfloat16()
    with torch.no_grad():
        theirs.embed.weight.copy_(theirs.lm_head.weight.t())  # tied at the start
    ours = GPT2026(small_config(), max_seq_len=T)
    copy_record_weights(theirs, ours)
    for p in (ours.embed, ours.head, ours.value_embeds, ours.bigram_embed, ours.attention_gates,
              ours.value_embed_gates, ours.skip_gate, ours.smear.gate):  # fmt: skip
        p.data = p.data.bfloat16()
    manager = optim["TrainingManager"](theirs)
    config = variant(get_config("small", recipe="2026-05"), {"model": small_config()})
    optimizers = build_optimizers(ours, config, rank=0, world_size=1)
    optimizers.muon.dtype = torch.bfloat16  # the record orthogonalises in bf16, on any device
    ours_named = dict(ours.named_parameters())
    for step in (0, 1, 963, 965):
        generator = torch.Generator().manual_seed(10 + step)
        for p in theirs.parameters():
            p.grad = (torch.randn(p.shape, generator=generator) * 0.01).to(p.dtype)
        for name, grad in record_gradients(theirs, 11).items():
            ours_named[name].grad = grad.clone().to(ours_named[name].dtype)
        manager.step_optimizers(step)
        optimizer_step(ours, optimizers, plan(step, config), world_size=1)
        expected = record_weights(theirs, manager)
        errors = {
            name: float((ours_named[name].detach().float() - want).norm() / want.norm().clamp_min(1e-12))
            for name, want in expected.items()
        }
        assert max(errors.values()) < 1e-6, (step, sorted(errors.items(), key=lambda e: -e[1])[:4])
    assert not optimizers.tied and manager.optimizer.split_embed


def record_weights(theirs: torch.nn.Module, manager: object) -> dict[str, torch.Tensor]:
    """The record's weights named and shaped as ours, its bf16 matrix banks completed with their mantissas."""
    states = manager.optimizer.param_states  # type: ignore[attr-defined]

    def full(p: torch.Tensor) -> torch.Tensor:
        mantissa = states[p].get("mantissa") if p in states else None
        if mantissa is None:
            return p.detach().float()
        bits = (p.detach().view(torch.int16).to(torch.int32) << 16) | (mantissa.view(p.shape).to(torch.int32) & 0xFFFF)
        return bits.view(torch.float32)

    return as_ours({name: full(p) for name, p in theirs.named_parameters()}, 11)
