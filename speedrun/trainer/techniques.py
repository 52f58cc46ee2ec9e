"""The techniques of our recipes: which record introduced each, what it gained, where it lives in our code, and
which recipe uses it. The README's technique table is generated from this list (`render_table`, spliced between
its `techniques` markers), and tests/test_techniques.py checks that the table is current and that every code
location named here exists.

A technique's record is its number on the GPT-2 Small track; its folder, pull request and time come from the
records store (records/track_1_short), so they are written once. The published gain is the record time it set
against the record before it, as the leaderboard publishes them; a record often brought other changes too,
which its README lists.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from speedrun.readme_blocks import replace_block
from speedrun.store import Record

TRACK = "track_1_short"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # code locations are relative to the repository


@dataclass(frozen=True)
class Technique:
    name: str
    record: int  # the small-track record that introduced it
    what: str  # what it computes, in one line
    code: str | None  # "path/to/file.py:Qualified.name" in our code, or None while we lack it
    recipes: tuple[str, ...]  # our recipes that use it (empty: none does)
    note: str = ""  # anything the table must say besides: why no recipe uses it, what the record's README claims


TECHNIQUES: tuple[Technique, ...] = (
    Technique(
        "Muon",
        3,
        "SGD momentum orthogonalised by a Newton-Schulz iteration, for the hidden matrices",
        "speedrun/trainer/optim.py:Muon",
        ("2025-08", "2025-04"),
    ),
    Technique(
        "ReLU² MLP, QK-norm, zero-initialised projections",
        5,
        "relu(x)^2 activations; rms-normed queries and keys; output projections start at zero",
        "speedrun/trainer/model.py:MLP",
        ("2025-08", "2025-04"),
    ),
    Technique(
        "Momentum warmup, logit softcap",
        9,
        "Muon's momentum rises from 0.85 to 0.95; logits squashed into (-cap, cap)",
        "speedrun/trainer/schedule.py:muon_momentum",
        ("2025-08", "2025-04"),
    ),
    Technique(
        "U-net skip connections",
        11,
        "the output of encoder layer i feeds decoder layer L-1-i with a learned weight",
        "speedrun/trainer/config.py:unet_skips",
        ("2025-08",),
    ),
    Technique(
        "Document-causal FlexAttention",
        12,
        "one long packed sequence; attention stays within documents, through block-sparse masks",
        "speedrun/trainer/model.py:document_block_lists",
        ("2025-08", "2025-04"),
    ),
    Technique(
        "Attention window warmup",
        13,
        "the sliding window grows with the fraction of training done",
        "speedrun/trainer/schedule.py:window_blocks",
        ("2025-08", "2025-04"),
    ),
    Technique(
        "Value embeddings",
        14,
        "token embeddings mixed into the values of the first and last layers",
        "speedrun/trainer/model.py:Attention",
        ("2025-08", "2025-04"),
    ),
    Technique(
        "FP8 head",
        19,
        "the head matmuls in float8 with fixed scales",
        "speedrun/trainer/model.py:_Fp8HeadCrossEntropy",
        ("2025-08",),
    ),
    Technique(
        "Long and short windows",
        20,
        "a few layers attend over the long window, the others over half of it",
        "speedrun/trainer/model.py:GPT.attention_masks",
        ("2025-08", "2025-04"),
    ),
    Technique(
        "Batches aligned to document starts",
        26,
        "every micro-batch starts at a document's first token",
        "speedrun/trainer/data.py:batch_starts",
        ("2025-08",),
    ),
    Technique(
        "MLP input matrix stored transposed",
        27,
        "stored (model_dim, hidden), which halves its Muon step (shape factor 1 rather than 2)",
        "speedrun/trainer/model.py:MLP",
        ("2025-08",),
    ),
    Technique(
        "Sparse attention gate",
        28,
        "each head's output scaled by a sigmoid of 12 dimensions of the layer's input",
        "speedrun/trainer/model.py:AttentionGate",
        ("2025-08",),
    ),
    Technique(
        "Flash Attention 3 (varlen), 2048-token document cap",
        29,
        "documents passed as cu_seqlens; no document longer than the maximum sequence length",
        "speedrun/trainer/layers/attention.py:Documents",
        ("2026-05",),
        "ours: flash-attn-4's varlen kernels as custom operators in the compiled graph where they run (the `fa4` "
        "extra on Hopper or newer: `fa4.py`), else FlexAttention with document masks built in the compiled "
        "forward; record scripts run through a FlexAttention stand-in of the same interface "
        "(`speedrun reproduce --attention flex`)",
    ),
    Technique(
        "YaRN",
        31,
        "rotary frequencies rescaled when the window grows",
        "speedrun/trainer/layers/attention.py:Yarn.extend",
        ("2026-05",),
    ),
    Technique(
        "Smear",
        34,
        "each token embedding gets a gated share of the previous token's",
        "speedrun/trainer/layers/embeddings.py:Smear",
        ("2026-05",),
    ),
    Technique(
        "Polar Express",
        38,
        "Muon's orthogonalisation with per-iteration optimal coefficients",
        "speedrun/trainer/normuon.py:polar_express",
        ("2026-05",),
        "README: 10 fewer steps",
    ),
    Technique(
        "Adam every other step",
        39,
        "Adam's parameters update on odd steps only",
        "speedrun/trainer/stages.py:is_adam_step",
        ("2026-05",),
    ),
    Technique(
        "Backout",
        40,
        "the output of the first layers is partly subtracted before the head",
        "speedrun/trainer/model_2026.py:GPT2026.hidden_states",
        ("2026-05",),
    ),
    Technique(
        "NorMuon",
        41,
        "Muon's update normalised per row or column by a second moment",
        "speedrun/trainer/normuon.py:normuon_normalize_",
        ("2026-05",),
    ),
    Technique(
        "Cautious weight decay tied to the learning rate",
        43,
        "decay only where the update and the weight agree in sign, scaled by the learning rate",
        "speedrun/trainer/normuon.py:cautious_update_",
        ("2026-05",),
        "README: 40 fewer steps; extended to Adam by record 50",
    ),
    Technique(
        "Batch-size schedule",
        46,
        "8, 16 then 24 sequences of 2048 tokens per step",
        "speedrun/trainer/stages.py:stage_at",
        ("2026-05",),
    ),
    Technique(
        "Partial key offset",
        49,
        "on long-window layers, the keys' position-free half is shifted one token forward",
        "speedrun/trainer/layers/attention.py:offset_keys",
        ("2026-05",),
    ),
    Technique(
        "Multi-token prediction, untied head at 2/3",
        53,
        "weighted losses on the next 3, then 2, then 1 tokens; embedding tied to the head until 2/3 of training",
        "speedrun/trainer/layers/head.py:MtpSoftcappedCrossEntropy",
        ("2026-05",),
    ),
    Technique(
        "Asymmetric logit rescale",
        54,
        "logits squashed by 23 * sigmoid((z + 5) / 7.5)",
        "speedrun/trainer/layers/head.py:rescale",
        ("2026-05",),
    ),
    Technique(
        "Value-embedding and skip gates",
        55,
        "sigmoid gates on the value embeddings and on the skip connection",
        "speedrun/trainer/layers/attention.py:Attention.forward",
        ("2026-05",),
    ),
    Technique(
        "Paired-head attention",
        58,
        "on some layers, pairs of heads attend to each other's keys over an interleaved sequence",
        "speedrun/trainer/layers/attention.py:Attention",
        ("2026-05",),
    ),
    Technique(
        "Fused linear-ReLU² kernel",
        59,
        "the MLP's first matmul and activation in one kernel",
        None,
        ("2026-05",),
        "ours: the matmul and the activation in PyTorch, left to torch.compile; a fused Triton kernel of ours was "
        "no faster on an H200 (0.847 against 0.820 ms a layer's micro-step at stage 1)",
    ),
    Technique(
        "Fused softcapped cross-entropy",
        60,
        "the softcap, the loss and its gradient in one pass over the logits (forward and backward fused by #79)",
        "speedrun/trainer/kernels.py:softcapped_cross_entropy",
        ("2025-08", "2025-04", "2026-05"),
        "ours: a Triton kernel for the tanh and algebraic caps; in 2026-05 two Triton kernels for the rescale and "
        "the multi-token loss, the forward one leaving each logit's sigmoid (record 84's tanh form) in its place "
        "so that the backward one does not compute it again, as #79 fused for, and the backward one writing the "
        "gradient in FP8 in both layouts the head's matmuls need (`mtp_kernels.py`, called by "
        "`layers/head.py:Fp8HeadMtpLoss`)",
    ),
    Technique(
        "Bigram hash embedding",
        62,
        "an embedding of a hash of (previous token, token) added to the residual stream",
        "speedrun/trainer/layers/embeddings.py:bigram_hash",
        ("2026-05",),
    ),
    Technique(
        "Maximum-sequence-length schedule",
        72,
        "documents capped at 896 tokens for the first third of training, 2048 after",
        "speedrun/trainer/documents.py:cut_documents",
        ("2026-05",),
    ),
    Technique(
        "Single saved activation",
        77,
        "the last attention layers read one saved residual stream instead of the current one",
        "speedrun/trainer/model_2026.py:GPT2026.hidden_states",
        ("2026-05",),
    ),
    Technique(
        "Paired-head Muon",
        80,
        "Muon orthogonalises query and key weights per pair of heads",
        "speedrun/trainer/layers/attention.py:Attention",
        ("2026-05",),
    ),
    Technique(
        "MUDD skip connections",
        81,
        "dense learned connections between layers' outputs",
        None,
        (),
        "not in record 84's script, which branches from before record 81",
    ),
    Technique(
        "Learnable XSA",
        82,
        "gated exclusive self-attention on some layers",
        None,
        (),
        "not in record 84's script, which branches from before record 81",
    ),
    Technique(
        "Bigram sign trick",
        83,
        "a sign drawn from the hash multiplies the bigram embedding",
        None,
        (),
        "not in record 84's script, which branches from before record 81",
    ),
    Technique(
        "FP8 MLP up-projection",
        84,
        "the MLP's first matmul in float8 in the forward pass",
        "speedrun/trainer/layers/mlp.py:Fp8UpProjection",
        ("2026-05",),
    ),
)


def code_location_exists(location: str, root: Path = PACKAGE_ROOT) -> bool:
    """Whether `path.py:Name.attr` names a file of the repository defining that class or function."""
    path, _, qualname = location.partition(":")
    file = root / path
    if not file.is_file():
        return False
    if not qualname:
        return True
    scope: list[ast.stmt] = ast.parse(file.read_text(encoding="utf-8")).body
    for part in qualname.split("."):
        found = next(
            (
                node
                for node in scope
                if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.name == part
            ),
            None,
        )
        if found is None:
            return False
        scope = found.body
    return True


def _link(url: str, text: str) -> str:
    return f"[{text}]({url})"


def gain(record: Record, records: list[Record]) -> str:
    """The record time it set against the record before it: '2.483 → 2.476 min (−0.4 s)'."""
    earlier = [r for r in records if r.track == record.track and r.number == record.number - 1 and not r.is_retiming]
    if not earlier:
        return f"{_minutes(record)} min"
    before = earlier[0]
    delta = record.time_seconds - before.time_seconds
    return f"{_minutes(before)} → {_minutes(record)} min ({delta:+.1f} s)".replace("-", "−")


def _minutes(record: Record) -> str:
    """The time as published ('2.476' of '2.476 minutes'), without a footnote mark."""
    return record.time_text.split()[0].rstrip("*")


def render_table(records: list[Record]) -> str:
    """The README's Markdown table of `TECHNIQUES`."""
    by_number = {r.number: r for r in records if r.track == TRACK and not r.is_retiming}
    rows = [
        "| technique | introduced by | published gain | in our code | recipes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in TECHNIQUES:
        record = by_number[t.record]
        pr = f", {_link(record.pr_urls[0], 'PR #' + record.pr_urls[0].rsplit('/', 1)[-1])}" if record.pr_urls else ""
        introduced = f"#{t.record} `{record.folder.name}`{pr}"
        code = f"`{t.code}`" if t.code else "not yet"
        recipes = ", ".join(f"`{r}`" for r in t.recipes) or "none"
        note = f" ({t.note})" if t.note else ""
        rows.append(f"| **{t.name}**: {t.what}{note} | {introduced} | {gain(record, records)} | {code} | {recipes} |")
    return "\n".join(rows)


BEGIN, END = "<!-- techniques -->", "<!-- /techniques -->"


def splice(readme_text: str, table: str) -> str:
    """The README text with the block between the technique markers replaced by `table`."""
    return replace_block(readme_text, BEGIN, END, table, PACKAGE_ROOT / "README.md")


def main() -> int:
    """`python -m speedrun.trainer.techniques [--check]`: rewrite the README's technique table, or (--check)
    exit 1 if it is out of date."""
    import sys

    from speedrun.store import load_records

    readme = PACKAGE_ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    updated = splice(text, render_table(load_records()))
    if "--check" in sys.argv[1:]:
        print("the technique table is up to date" if updated == text else "the technique table is out of date")
        return int(updated != text)
    readme.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
