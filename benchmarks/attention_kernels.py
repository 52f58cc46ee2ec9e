"""The 2026-05 recipe's attention over one micro-step of each batch stage, forward and backward, on the GPU at
hand: FlexAttention as our trainer calls it (document block masks, sliding windows; the masks made once per
micro-batch and layout, timed apart), against the `flash-attn-4` package's varlen function (CuTe DSL kernels,
pip-installable) when it imports. Outputs and gradients are compared between the two.

Each stage's micro-batch (one GPU: 16Ki, 32Ki and 48Ki tokens) is random documents cut at the stage's maximum
length; each of the 10 attention layers gets its own layout (paired heads: 3 heads over twice the tokens) and
window (long on layers 3 and 10), as the model gives them.

    pip install flash-attn-4   # optional: without it, FlexAttention alone is timed
    python benchmarks/attention_kernels.py [--stages 1,2,3]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from speedrun.trainer.config import StagedSchedule, TrainOptions  # noqa: E402
from speedrun.trainer.flash_flex import document_mask, sequence_ids  # noqa: E402
from speedrun.trainer.layers.attention import ATTENTION_BLOCK  # noqa: E402

Layer = tuple[bool, int]  # (paired, window in tokens)


def layers_at(stage: int) -> tuple[list[Layer], int, int]:
    """Each attention layer's (paired, window), the micro-batch's tokens and its maximum document length."""
    config = TrainOptions(track="small", recipe="2026-05").resolve_config()
    schedule, model = config.schedule, config.model
    assert isinstance(schedule, StagedSchedule) and hasattr(model, "paired_head_layers")
    plan = schedule.stages[stage - 1]
    short, long = (w * ATTENTION_BLOCK for w in plan.windows)
    layers = [
        (i in model.paired_head_layers, long if i in model.long_window_layers else short)
        for i in range(model.num_layers)
        if i not in model.layers_without_attention
    ]
    return layers, plan.batch_tokens // config.data.micro_steps_per_step, plan.max_seq_len


def random_cu_seqlens(tokens: int, max_len: int, generator: torch.Generator) -> torch.Tensor:
    """Document boundaries: lengths drawn as FineWeb's roughly are (many short, a long tail), cut at max_len."""
    ends, at = [0], 0
    while at < tokens:
        length = int(torch.empty(1).exponential_(1 / 700, generator=generator).clamp(16, max_len))
        at = min(tokens, at + length)
        ends.append(at)
    return torch.tensor(ends, dtype=torch.int32, device="cuda")


def flex_side(layers: list[Layer], cu: torch.Tensor, tokens: int) -> tuple[Callable[..., list], Callable[[], object]]:
    from torch.nn.attention.flex_attention import flex_attention

    # one compiled kernel per layout, window and stage: more than dynamo's default limit of 8
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    attend = torch.compile(flex_attention, dynamic=False)
    ids = sequence_ids(cu, tokens)

    def masks() -> dict:
        return {(paired, w): document_mask(ids, w, paired) for paired, w in set(layers)}

    built = masks()

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, paired: bool, window: int) -> torch.Tensor:
        q4, k4, v4 = (t.transpose(0, 1).unsqueeze(0) for t in (q, k, v))
        return attend(q4, k4, v4, block_mask=built[paired, window], scale=0.12).squeeze(0).transpose(0, 1)

    return run, masks


def fa4_side(cu: torch.Tensor, max_len: int) -> Callable[..., torch.Tensor] | None:
    try:
        from flash_attn.cute import flash_attn_varlen_func
    except ImportError as error:
        print(f"flash-attn-4 not importable ({error}): FlexAttention only")
        return None

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, paired: bool, window: int) -> torch.Tensor:
        c, m = (2 * cu, 2 * max_len) if paired else (cu, max_len)
        out = flash_attn_varlen_func(
            q, k, v, cu_seqlens_q=c, cu_seqlens_k=c, max_seqlen_q=m, max_seqlen_k=m, softmax_scale=0.12,
            causal=True, window_size=(window, 0),
        )  # fmt: skip
        return out[0] if isinstance(out, tuple) else out

    return run


def operator_side(cu: torch.Tensor) -> Callable[..., torch.Tensor]:
    """flash-attn-4 through `fa4.py`'s custom operator, as the trainer calls it with `--attention fa4`."""
    from speedrun.trainer.fa4 import varlen_attention

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, paired: bool, window: int) -> torch.Tensor:
        return varlen_attention(q, k, v, 2 * cu if paired else cu, q.size(0), window, 0.12)

    return run


def inputs_for(layers: list[Layer], tokens: int) -> list[tuple[torch.Tensor, ...]]:
    made = []
    for paired, _ in layers:
        shape = (2 * tokens, 3, 128) if paired else (tokens, 6, 128)
        made.append(tuple(torch.randn(shape, device="cuda", dtype=torch.bfloat16).requires_grad_() for _ in range(3)))
    return made


def micro_step(attend: Callable[..., torch.Tensor], layers: list[Layer], qkv: list, grads: list) -> list:
    outs = []
    for (paired, window), (q, k, v), g in zip(layers, qkv, grads, strict=True):
        y = attend(q, k, v, paired, window)
        outs.append((y, *torch.autograd.grad(y, (q, k, v), g)))
    return outs


def timed(attend: Callable[..., torch.Tensor], layers: list[Layer], qkv: list, grads: list) -> tuple[list, float]:
    """The micro-step's outputs and gradients (the first call compiles), and its median time in ms."""
    from triton.testing import do_bench

    outs = micro_step(attend, layers, qkv, grads)
    return outs, do_bench(lambda: micro_step(attend, layers, qkv, grads), return_mode="median")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", default="1,2,3", help="batch stages, comma-separated")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("attention_kernels: needs a CUDA GPU")
    from triton.testing import do_bench

    torch.manual_seed(0)
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}: attention of one micro-step, fwd + bwd")
    for stage in (int(s) for s in args.stages.split(",")):
        layers, tokens, max_len = layers_at(stage)
        cu = random_cu_seqlens(tokens, max_len, torch.Generator().manual_seed(stage))
        qkv = inputs_for(layers, tokens)
        grads = [torch.randn_like(q) for q, _, _ in qkv]
        flex, masks = flex_side(layers, cu, tokens)
        sides = {"FlexAttention": flex}
        fa4 = fa4_side(cu, max_len)
        if fa4 is not None:
            sides["flash-attn-4"] = fa4
            sides["flash-attn-4, our operator"] = operator_side(cu)
        results = {}
        for name, attend in sides.items():
            results[name], ms = timed(attend, layers, qkv, grads)
            print(f"stage {stage} ({tokens} tokens, {cu.numel() - 1} documents, {len(layers)} layers): "
                  f"{name}: {ms:.2f} ms a micro-step, {8 * ms:.1f} ms a step (8 micro-steps)")  # fmt: skip
        mask_ms = do_bench(masks, return_mode="median")
        print(f"stage {stage}: FlexAttention's block masks: {mask_ms:.2f} ms a micro-step (eager; ours makes them "
              f"inside its compiled graph)")  # fmt: skip
        for name in (n for n in results if n != "FlexAttention"):
            worst = max(
                float((a - b).detach().abs().max() / b.detach().abs().max().clamp_min(1e-6))
                for flex_out, other_out in zip(results["FlexAttention"], results[name], strict=True)
                for a, b in zip(other_out, flex_out, strict=True)
            )
            print(f"stage {stage}: {name} against FlexAttention, outputs and gradients: worst max-abs "
                  f"difference {worst:.4f} of the largest value")  # fmt: skip


if __name__ == "__main__":
    main()
