"""The model: masks, causality, document isolation, initial loss; FlexAttention against SDPA on a GPU."""

from __future__ import annotations

import math

import pytest
import torch

from speedrun.trainer.config import ATTENTION_BLOCK_SIZE, get_config
from speedrun.trainer.model import EOT_TOKEN, GPT, block_attention_mask, dense_attention_mask, uniform_init_

B = ATTENTION_BLOCK_SIZE


def documents(lengths: list[int], seed: int = 0) -> torch.Tensor:
    """A packed sequence of documents of these lengths, each starting with EOT."""
    g = torch.Generator().manual_seed(seed)
    parts = []
    for n in lengths:
        doc = torch.randint(0, 1000, (n,), generator=g)
        doc[0] = EOT_TOKEN
        parts.append(doc)
    return torch.cat(parts)


def randomised_tiny_model(device: str = "cpu") -> GPT:
    """The tiny model with every matrix random (the zero-initialised projections would hide attention)."""
    torch.manual_seed(0)
    model = GPT(get_config("small", "tiny").model, max_seq_len=8 * B).to(device)
    for p in model.parameters():
        if p.ndim >= 2:
            uniform_init_(p)
    return model


def test_dense_mask_is_causal_within_documents_and_windows() -> None:
    inputs = documents([300, 500, 224])
    docs = (inputs == EOT_TOKEN).cumsum(0)
    mask = dense_attention_mask(docs, window_blocks=2)
    q, k = 700, 650
    assert mask[q, k] and mask[q, q] and not mask[q, q + 1]
    assert not mask[350, 299]  # query in document 2, key in document 1
    # window of 2 blocks: keys from the query's block and the one before it
    assert mask[5 * B + 3, 4 * B] and not mask[5 * B + 3, 4 * B - 1]


LAYOUTS = {
    "mixed": [100, 300, 40, 200, 130, 254],
    "long": [50, 900, 74, 1024],  # documents spanning many blocks
    "short": [7, 9, 30, 3, 80, 127, 1, 128, 250, 129, 256, 4],  # several starts in one block
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("window", [1, 2, 3, 5, 8, 20])
def test_block_mask_covers_exactly_the_dense_mask(window: int, layout: str) -> None:
    """Built once for the documents and clamped per window, the block lists are exactly the dense mask's."""
    inputs = documents(LAYOUTS[layout])
    docs = (inputs == EOT_TOKEN).cumsum(0).to(torch.int32)
    dense = dense_attention_mask(docs, window)
    n = inputs.numel() // B
    per_block = dense.view(n, B, n, B).permute(0, 2, 1, 3).reshape(n, n, B * B)
    block_mask = block_attention_mask(docs, window, mask_mod=None)
    listed = torch.zeros(n, n, dtype=torch.bool)
    full = torch.zeros(n, n, dtype=torch.bool)
    for counts, indices, target in (
        (block_mask.kv_num_blocks, block_mask.kv_indices, listed),
        (block_mask.full_kv_num_blocks, block_mask.full_kv_indices, full),
    ):
        for q in range(n):
            target[q, indices[0, 0, q, : counts[0, 0, q]].long()] = True
    assert torch.equal(listed | full, per_block.any(-1))  # every block with an allowed pair is visited
    assert torch.equal(full, per_block.all(-1))  # and exactly the fully allowed ones skip the mask


def test_initial_loss_is_uniform_over_the_vocabulary() -> None:
    model = GPT(get_config("small", "tiny").model, max_seq_len=4 * B)
    inputs = documents([200, 312])
    loss = model(inputs, torch.roll(inputs, -1), window_blocks=4)
    assert loss.item() == pytest.approx(math.log(model.config.vocab_size), rel=1e-5)  # zero-initialised head


def test_outputs_depend_only_on_earlier_tokens_of_the_same_document() -> None:
    model = randomised_tiny_model().eval()
    inputs = documents([300, 212])
    changed = inputs.clone()
    changed[150] = 7  # inside the first document
    with torch.no_grad():
        before = model.hidden_states(inputs, *model.attention_masks(inputs, 4))
        after = model.hidden_states(changed, *model.attention_masks(changed, 4))
    moved = (before - after).abs().amax(dim=1) > 1e-6
    assert not moved[:150].any()  # earlier positions cannot see the change
    assert moved[150:300].all()  # later positions of the same document do
    # the value embeddings of the changed token do not leak either: the second document is untouched
    assert not moved[300:].any()


def test_window_limits_how_far_back_attention_reaches() -> None:
    model = randomised_tiny_model().eval()
    inputs = documents([4 * B])
    changed = inputs.clone()
    changed[10] = 7
    with torch.no_grad():
        short = model.hidden_states(inputs, *model.attention_masks(inputs, 2))
        short_changed = model.hidden_states(changed, *model.attention_masks(changed, 2))
    moved = (short - short_changed).abs().amax(dim=1) > 1e-6
    # a change in block 0 spreads one block further through each long-window layer (0 and 3 of the tiny
    # model, window 2 blocks) and stays put through the short-window ones (window 1 block)
    assert moved[2 * B : 3 * B].any()
    assert not moved[3 * B :].any()


def test_sliced_evaluation_is_the_mean_over_every_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices of 100 tokens over 350 leave a short last slice: it must weigh by its 50 tokens, not as a whole slice."""
    from speedrun.trainer import model as model_module

    model = randomised_tiny_model().eval()
    inputs = documents([150, 200])
    targets = torch.roll(inputs, -1)
    with torch.no_grad():
        whole = model(inputs, targets, window_blocks=4)
        monkeypatch.setattr(model_module, "EVAL_SLICE_TOKENS", 100)
        sliced = model(inputs, targets, window_blocks=4)
    torch.testing.assert_close(sliced, whole, rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("window", [1, 3, 8])
def test_flex_attention_matches_dense_sdpa_on_gpu(window: int) -> None:
    model = randomised_tiny_model("cuda").eval()
    inputs = documents([100, 300, 40, 200, 130, 254]).cuda()
    docs = (inputs == EOT_TOKEN).cumsum(0).to(torch.int32)
    with torch.no_grad():
        flex = model.hidden_states(inputs, *model.attention_masks(inputs, window))
        dense = model.hidden_states(
            inputs, dense_attention_mask(docs, window), dense_attention_mask(docs, max(window // 2, 1))
        )
    torch.testing.assert_close(flex.float(), dense.float(), rtol=0.05, atol=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp8_head_matches_the_bf16_head_on_gpu() -> None:
    from speedrun.trainer.kernels import softcapped_cross_entropy_reference
    from speedrun.trainer.model import _Fp8HeadCrossEntropy, fp8_supported, rms_norm

    if not fp8_supported(torch.device("cuda")):
        pytest.skip("FP8 matmuls need compute capability 8.9 or more")
    torch.manual_seed(0)
    rows, dim, vocab = 2048, 768, 50304
    scales = get_config("small").model.fp8_scales
    x = rms_norm(torch.randn(rows, dim, device="cuda")).bfloat16().requires_grad_(True)
    w = (torch.randn(vocab, dim, device="cuda") * 0.02).requires_grad_(True)
    targets = torch.randint(0, vocab, (rows,), device="cuda")

    loss = _Fp8HeadCrossEntropy.apply(x, w, targets, scales, 15.0, "tanh")
    (loss / 8).backward()  # a caller's factor, as in gradient accumulation
    x_ref = x.detach().float().requires_grad_(True)
    w_ref = w.detach().clone().requires_grad_(True)
    ref = softcapped_cross_entropy_reference(x_ref @ w_ref.t(), targets, 15.0, "tanh")
    (ref / 8).backward()

    assert loss.item() == pytest.approx(ref.item(), rel=2e-2)
    for got, want in ((x.grad.float(), x_ref.grad), (w.grad, w_ref.grad)):
        cosine = torch.nn.functional.cosine_similarity(got.flatten(), want.flatten(), dim=0)
        assert cosine > 0.98
        assert got.norm().item() == pytest.approx(want.norm().item(), rel=0.05)


def test_medium_recipe_shape_trains_on_cpu() -> None:
    """The medium track's own choices (normalised values, algebraic softcap, sparse skips) run end to end."""
    config = get_config("medium", "tiny").model
    assert config.normalize_values and config.softcap_kind == "algebraic"
    torch.manual_seed(0)
    model = GPT(config, max_seq_len=4 * B)
    inputs = documents([200, 312])
    loss = model(inputs, torch.roll(inputs, -1), window_blocks=4)
    loss.backward()
    assert math.isfinite(loss.item())
    assert model.head_w.grad is not None and model.head_w.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


def test_the_body_traces_as_one_graph_with_flex_attention_masks() -> None:
    """On a GPU the body (embeddings to final norm) is compiled with fullgraph=True, so a graph break there would
    stop the run. Traced here on the CPU with the GPU's BlockMasks (FlexAttention's CPU fallback evaluates only
    the mask function, not the block lists, so the GPU test above compares the values)."""
    model = randomised_tiny_model().eval()
    inputs = documents(LAYOUTS["mixed"])
    docs = (inputs == EOT_TOKEN).cumsum(0).to(torch.int32)
    model.doc_ids[: inputs.numel()].copy_(docs)
    masks = [block_attention_mask(docs, window, model._mask_mod()) for window in (4, 2)]
    body = torch.compile(model.hidden_states, backend="aot_eager", fullgraph=True, dynamic=False)
    with torch.no_grad():
        out = body(inputs, *masks)
    assert out.shape == (inputs.numel(), model.config.model_dim) and torch.isfinite(out).all()


def test_attention_gate_starts_at_one_half_and_is_a_muon_matrix() -> None:
    """Record 28's sparse gate: sigmoid of a zero-initialised linear map of the first model_dim/64 input
    dimensions, one per head; as a matrix inside a block it is trained by Muon, as the record's is."""
    config = get_config("small").model
    assert config.attention_gate_dims == 12
    model = randomised_tiny_model()
    attention = model.blocks[0].attn
    assert attention.gate is not None and attention.gate.weight.shape == (2, 2)
    x = torch.randn(256, 128)
    with torch.no_grad():
        attention.gate.weight.zero_()
        assert torch.equal(attention.gate(x), torch.full((256, 2, 1), 0.5))
    assert any(p is attention.gate.weight for p in model.hidden_matrices())


def test_the_mlp_input_matrix_is_stored_as_the_record_stores_it() -> None:
    """Record 28 keeps both MLP matrices (model_dim, hidden): Muon's shape factor is then 1 for both."""
    mlp = GPT(get_config("small", "tiny").model, max_seq_len=B).blocks[0].mlp
    assert mlp.fc_w.shape == mlp.proj_w.shape == (128, 512)
    medium = GPT(get_config("medium", "tiny").model, max_seq_len=B).blocks[0].mlp
    assert medium.fc_w.shape == (512, 128), "medium record 8 keeps (hidden, model_dim)"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_compiled_body_trains_as_the_uncompiled_one_on_gpu() -> None:
    """The body compiled as one graph (fullgraph, as `speedrun train` does on a GPU) gives the loss and the
    gradients of the same model run uncompiled (FlexAttention then compiled on its own)."""
    inputs = documents([100, 300, 40, 200, 130, 254]).cuda()
    targets = torch.roll(inputs, -1)
    results = []
    for compiled in (False, True):
        model = randomised_tiny_model("cuda")
        if compiled:
            model.compile_body()
        loss = model(inputs, targets, window_blocks=3)
        loss.backward()
        results.append((loss.detach(), [p.grad.detach().clone() for p in model.parameters()]))
    (eager_loss, eager_grads), (compiled_loss, compiled_grads) = results
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-3, atol=1e-3)
    for got, want in zip(compiled_grads, eager_grads, strict=True):
        cosine = torch.nn.functional.cosine_similarity(got.flatten().float(), want.flatten().float(), dim=0)
        assert cosine > 0.99 or want.abs().max() == 0
