"""flash-attn-4 as a custom operator (fa4.py). On a CPU, with the dense reference standing in for the kernels:
the operators' schema, fake shapes and autograd (opcheck), gradients against the reference's own autograd, one
graph under `torch.compile(fullgraph=True)`; the `--attention` option. On a GPU with flash-attn-4 installed: the
kernels against the dense reference in bf16, plain and paired layouts, at each window."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import torch

from speedrun.errors import BadInput
from speedrun.trainer import fa4
from speedrun.trainer.config import TrainOptions, get_config, with_attention_for
from speedrun.trainer.flash_flex import dense_varlen_attention, reference_mask
from speedrun.trainer.layers.attention import Documents


def dense_forward(q, k, v, cu, max_len, left, scale):  # type: ignore[no-untyped-def]
    allowed = reference_mask(cu, q.size(0), left)
    wide = torch.promote_types(q.dtype, torch.float32)
    scores = torch.einsum("qhd,khd->hqk", q.to(wide), k.to(wide)) * scale
    scores = scores.masked_fill(~allowed, float("-inf"))
    lse = scores.logsumexp(-1)
    out = torch.einsum("hqk,khd->qhd", (scores - lse[..., None]).exp(), v.to(wide)).to(q.dtype)
    return out, lse.float()  # (heads, tokens), as flash-attn-4 returns it


def dense_backward(dout, q, k, v, out, lse, cu, max_len, left, scale):  # type: ignore[no-untyped-def]
    """Attention's gradients written out (an operator's body runs below autograd): with P the probabilities,
    dV = P^T dO, dS = P * (dO V^T - rowsum(dO * O)), dQ = scale dS K, dK = scale dS^T Q."""
    wide = torch.promote_types(q.dtype, torch.float32)
    q, k, v, dout, out = (t.to(wide) for t in (q, k, v, dout, out))
    allowed = reference_mask(cu, q.size(0), left)
    scores = (torch.einsum("qhd,khd->hqk", q, k) * scale).masked_fill(~allowed, float("-inf"))
    probs = (scores - lse.to(wide)[..., None]).exp()
    dv = torch.einsum("hqk,qhd->khd", probs, dout)
    dscores = probs * (torch.einsum("qhd,khd->hqk", dout, v) - (dout * out).sum(-1).t()[..., None])
    dq = torch.einsum("hqk,khd->qhd", dscores, k) * scale
    dk = torch.einsum("hqk,qhd->khd", dscores, q) * scale
    return dq, dk, dv


@pytest.fixture
def dense_kernels(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(fa4, "KERNELS", fa4.Kernels(dense_forward, dense_backward))
    yield


def inputs(paired: bool, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    cu = torch.tensor([0, 100, 130, 256, 256], dtype=torch.int32)
    n, heads = (512, 1) if paired else (256, 2)
    q, k, v = (torch.randn(n, heads, 16, generator=generator, dtype=torch.float64) for _ in range(3))
    return q, k, v, 2 * cu if paired else cu


def test_the_operators_schema_fake_shapes_and_autograd_hold(dense_kernels: None) -> None:
    q, k, v, cu = inputs(False, torch.Generator().manual_seed(0))
    for t in (q, k, v):
        t.requires_grad_()
    torch.library.opcheck(fa4.varlen_forward, (q, k, v, cu, 256, 128, 0.1))


@pytest.mark.parametrize("paired", [False, True], ids=["plain", "paired"])
@pytest.mark.parametrize("left", [64, 200])
def test_gradients_through_the_operator_are_the_references(dense_kernels: None, paired: bool, left: int) -> None:
    q, k, v, cu = inputs(paired, torch.Generator().manual_seed(1))
    grad = torch.randn_like(q)
    ours = [t.clone().requires_grad_() for t in (q, k, v)]
    reference = [t.clone().requires_grad_() for t in (q, k, v)]
    y = fa4.varlen_attention(*ours, cu, q.size(0), left, 0.1)
    y_ref = dense_varlen_attention(*reference, cu, left, 0.1)
    torch.testing.assert_close(y, y_ref)
    for got, want in zip(torch.autograd.grad(y, ours, grad), torch.autograd.grad(y_ref, reference, grad), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)  # the log-sum-exp kept in fp32, as fa4's


def test_two_layers_of_it_compile_into_one_graph(dense_kernels: None) -> None:
    graphs = []

    def count(gm: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(gm)
        return gm.forward

    def two_layers(q: torch.Tensor, cu: torch.Tensor) -> torch.Tensor:
        y = fa4.varlen_attention(q, q, q, cu, q.size(0), 64, 0.1)
        return fa4.varlen_attention(y, q, q, cu, q.size(0), 128, 0.1)

    q, _, _, cu = inputs(False, torch.Generator().manual_seed(2))
    y = torch.compile(two_layers, backend=count, fullgraph=True)(q, cu)
    assert len(graphs) == 1
    torch.testing.assert_close(y, two_layers(q, cu))


def test_the_attention_option_chooses_the_kernel_of_the_2026_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    config = TrainOptions(recipe="2026-05", attention="flex").resolve_config()
    assert config.model.attention == "flex"  # type: ignore[union-attr]
    monkeypatch.setattr(fa4, "installed", lambda: True)
    assert TrainOptions(recipe="2026-05", attention="fa4").resolve_config().model.attention == "fa4"  # type: ignore[union-attr]
    monkeypatch.setattr(fa4, "installed", lambda: False)
    with pytest.raises(BadInput, match=r"pip install 'speedrun\[fa4\]'"):
        TrainOptions(recipe="2026-05", attention="fa4").resolve_config()
    with pytest.raises(BadInput, match="auto, flex or fa4"):
        TrainOptions(recipe="2026-05", attention="fa3").resolve_config()
    with pytest.raises(BadInput, match="--recipe 2026-05"):
        TrainOptions(recipe="2025-08", attention="flex").resolve_config()


@pytest.mark.parametrize(
    ("device", "gpu", "capability", "installed", "expected"),
    [
        ("cuda", True, (9, 0), True, "fa4"),  # an H100 or H200 with flash-attn-4 installed
        ("cuda", True, (10, 0), True, "fa4"),
        ("cuda", True, (9, 0), False, "flex"),  # not installed
        ("cuda", True, (8, 0), True, "flex"),  # an A100: flash-attn-4 has no kernels for it
        ("cuda", False, None, True, "flex"),  # no GPU
        ("cpu", True, (9, 0), True, "flex"),  # training on the CPU: the dense reference runs, whatever the config says
    ],
)
def test_auto_attention_is_flash_attn_4_only_where_it_runs(
    monkeypatch: pytest.MonkeyPatch, device: str, gpu: bool, capability: tuple[int, int] | None, installed: bool,
    expected: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *_: capability)
    monkeypatch.setattr(fa4, "installed", lambda: installed)
    built = [TrainOptions(recipe="2026-05", attention=a).resolve_config() for a in (None, "auto")]  # none: auto
    built.append(get_config("small", recipe="2026-05"))  # as the benchmarks build it: they run what train runs
    for config in built:
        assert config.model.attention == "auto"  # type: ignore[union-attr]  # the launcher leaves it so
        assert with_attention_for(config, device).model.attention == expected  # type: ignore[union-attr]
    for chosen in ("flex", "fa4") if installed else ("flex",):  # a kernel asked for by name stays
        config = TrainOptions(recipe="2026-05", attention=chosen).resolve_config()
        assert with_attention_for(config, device).model.attention == chosen  # type: ignore[union-attr]


def test_the_attention_layers_refuse_an_unsettled_kernel() -> None:
    with pytest.raises(ValueError, match="'auto'"):
        Documents(torch.tensor([0, 4], dtype=torch.int32), torch.zeros(4, dtype=torch.int32), "auto")


@pytest.mark.skipif(not (torch.cuda.is_available() and fa4.installed()), reason="needs a CUDA GPU and flash-attn-4")
@pytest.mark.parametrize("paired", [False, True], ids=["plain", "paired"])
@pytest.mark.parametrize("left", [128, 384, 1408])
def test_on_a_gpu_flash_attn_4_computes_the_reference_in_bf16(paired: bool, left: int) -> None:
    generator = torch.Generator(device="cuda").manual_seed(3)
    cu = torch.tensor([0, 700, 2748, 3000, 4096, 4096], dtype=torch.int32, device="cuda")
    n, heads = (8192, 3) if paired else (4096, 6)
    cu = 2 * cu if paired else cu
    q, k, v = (torch.randn(n, heads, 128, generator=generator, device="cuda").bfloat16() for _ in range(3))
    grad = torch.randn_like(q)
    ours = [t.clone().requires_grad_() for t in (q, k, v)]
    reference = [t.float().requires_grad_() for t in (q, k, v)]
    y = fa4.varlen_attention(*ours, cu, n, left, 0.12)
    y_ref = dense_varlen_attention(*reference, cu, left, 0.12)
    torch.testing.assert_close(y.float(), y_ref, rtol=0, atol=2e-2)
    for got, want in zip(
        torch.autograd.grad(y, ours, grad), torch.autograd.grad(y_ref, reference, grad.float()), strict=True
    ):
        torch.testing.assert_close(got.float(), want, rtol=0, atol=5e-2)


def test_cutlass_warnings_about_the_aux_data_argument_are_silenced() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        fa4.silence_cutlass_warnings()  # as importing fa4 does, inside this block
        warnings.warn(
            "Argument aux_data (position 17) cannot be converted to a JitArgument for function 'cutlass_x'. Its type"
            " `<class 'flash_attn.cute.utils.AuxData'>` is not supported.",
            UserWarning,
            stacklevel=1,
        )
        warnings.warn("another warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["another warning"]
