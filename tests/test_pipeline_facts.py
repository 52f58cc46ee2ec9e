"""The data-pipeline hash covers the facts that decide the token streams, and the archive's grouping by it.

Each dishonest change of the data (files, validation size, a replaced loader, skipped batches) must change
the hash; layout, local names and the folder the data lies in must not. On the archive, the hash may only
split a group of records that the old hash (the loader definitions alone) put together where those facts
differ: every such split is listed below with its reason, from the logs.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import pytest

from speedrun.errors import BadInput
from speedrun.judge.discover import find_run_logs
from speedrun.judge.parse import parse_log
from speedrun.judge.pipeline import _definition_dumps, data_pipeline_facts, data_pipeline_hash

SOURCE = """\
import glob
import torch

def distributed_data_generator(filename_pattern, num_tokens):
    files = sorted(glob.glob(filename_pattern))
    while True:
        yield torch.zeros(num_tokens)

class Hyperparameters:
    train_files: str = "data/fineweb10B/fineweb_train_*.bin"
    val_files: str = "data/fineweb10B/fineweb_val_*.bin"
    val_tokens: int = 10485760
args = Hyperparameters()

train_loader = distributed_data_generator(args.train_files, 1024)
for step in range(1000):
    if step % 250 == 0:
        val_steps = args.val_tokens // (1024 * world_size)
        val_loader = distributed_data_generator(args.val_files, 1024)
        for _ in range(val_steps):
            inputs = next(val_loader)
    for _ in range(grad_accum_steps):
        inputs = next(train_loader)
"""


def test_the_facts_read_from_a_script() -> None:
    assert data_pipeline_facts(SOURCE) == (
        "files train_files = fineweb_train_*.bin",
        "files val_files = fineweb_val_*.bin",
        "val size val_tokens = Constant(value=10485760)",
        "loader train_loader = distributed_data_generator(Attribute(value=Name(id='args'), attr='train_files')) []",
        "val size val_steps = BinOp(left=Attribute(value=Name(), attr='val_tokens'), op=FloorDiv(), "
        "right=BinOp(left=Constant(value=1024), op=Mult(), right=Name()))",
        "loader val_loader = distributed_data_generator(Attribute(value=Name(id='args'), attr='val_files')) "
        "[for > if then]",
        "advances val_loader by next [for > if then > for]",
        "advances train_loader by next [for > for]",
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"data/fineweb10B/fineweb_train_*.bin"', '"data/fineweb10B/fineweb_val_*.bin"'),
        ("val_tokens: int = 10485760", "val_tokens: int = 5242880"),
        ("// (1024 * world_size)", "// (1024 * world_size) // 2"),
        ("args.train_files, 1024)", "args.val_files, 1024)"),
        ("    for _ in range(grad_accum_steps):", "    next(train_loader)\n    for _ in range(grad_accum_steps):"),
        ("    for _ in range(grad_accum_steps):\n", "    for _ in range(grad_accum_steps):\n      if step % 2:\n  "),
        ("args = Hyperparameters()\n", "args = Hyperparameters()\nargs.train_files = args.val_files\n"),
        ("args = Hyperparameters()\n", "args = Hyperparameters()\ndistributed_data_generator = other_generator\n"),
        ("train_loader = distributed_data_generator(", "train_loader = my_generator("),
        ("files = sorted(glob.glob(filename_pattern))", "files = sorted(glob.glob(filename_pattern))[1:]"),
    ],
    ids=[
        "train glob at the val shard",
        "fewer val tokens",
        "fewer val steps",
        "train loader on the val files",
        "a batch skipped each step",
        "batches drawn every other step",
        "file setting reassigned",
        "loader name rebound",
        "another loader made",
        "loader code changed",
    ],
)
def test_every_change_of_the_data_changes_the_hash(old: str, new: str) -> None:
    assert old in SOURCE
    assert data_pipeline_hash(SOURCE.replace(old, new, 1)) != data_pipeline_hash(SOURCE)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"data/fineweb10B/fineweb_train_*.bin"', '"/data/250010180/bjx/data/fineweb10B/fineweb_train_*.bin"'),
        ("1024 * world_size", "1024 * ddp_world_size"),
        ("for step in range(1000):", "for step in range(args.num_iterations + 1):"),
        ("    val_tokens: int = 10485760", "    # the validation size\n    val_tokens: int = 10485760"),
        ("print", "print"),
    ],
    ids=["data folder", "a local name", "the loop's bound", "a comment", "unrelated"],
)
def test_what_does_not_change_the_data_keeps_the_hash(old: str, new: str) -> None:
    assert data_pipeline_hash(SOURCE.replace(old, new, 1)) == data_pipeline_hash(SOURCE)


def test_our_trainers_sections_are_read_only_when_the_log_says_so() -> None:
    data = "def load(path):\n    return open(path).read()\n"
    source = f"# >>> speedrun/trainer/data.py\n{data}"
    assert data_pipeline_hash(source, sectioned=True) is not None
    assert data_pipeline_hash(source, sectioned=False) is None  # one script without upstream loader code
    assert data_pipeline_hash(SOURCE + f"# >>> speedrun/trainer/data.py\n{data}", sectioned=False) is not None


# --- the archive --------------------------------------------------------------------------------------------------

# Groups of records that the loader definitions alone put together, and that the facts now split, with why.
# Each entry: the folders of each new group (a folder whose logs ran two codes appears in two groups).
SPLITS = {
    "2024-10-20_ScaleUp1B's runs validate on 10,420,224 and 10,403,840 tokens, not 10,485,760": [
        {
            "2024-10-09_SOAP",
            "2024-10-10_Muon",
            "2024-10-14_ModernArch",
            "2024-10-17_DistributedMuon",
            "2024-10-18_PyTorch25",
            "2024-10-29_Optimizers",
            "2024-11-03_UntieEmbed",
            "2024-11-06_ShortcutsTweaks",
            "2024-11-08_CastBf16",
            "2024-11-09_Replicateleloykun",
            "2024-11-10_ScaleShortcuts",
            "2024-11-10_UNetDoubleLr",
            "2024-11-14_QuantizedFP4",
        },
        {"2024-10-20_ScaleUp1B"},
        {"2024-10-20_ScaleUp1B"},
    ],
    "2025-02-01_RuleTweak's untimed warmup draws batches from a train loader made for it": [
        {"2025-01-13_Fp8LmHead", "2025-01-16_Sub3Min", "2025-01-18", "2025-01-26_BatchSize"},
        {"2025-02-01_RuleTweak"},
    ],
    "the warmup of noallreduce and UpgradeTorch190 draws batches from a train loader; FasterReduce's has none": [
        {
            "2025-05-24_FasterReduce",
            "2025-05-24_StableTorch",
            "2025-05-25_EvenFasterReduce",
            "2025-05-25_MuonWithAuxAdamExample",
        },
        {"2025-05-30_noallreduce", "2025-07-13_UpgradeTorch190"},
    ],
    "the warmup of SALambdaOnWeights and NorMuonOptimsAndFixes also runs a validation pass": [
        {"2025-12-10_SALambdaOnWeights", "2025-12-11_NorMuonOptimsAndFixes"},
        {"2025-11-29_BatchSizeSchedule"},
    ],
    "from 2025-12-26 the warmup validates without val_steps and draws train batches in another loop": [
        {
            "2025-12-26_LogitRescale",
            "2025-12-29_VeSkipGates",
            "12-29-baseline",
            "12-31-gates-to-adam",
            "12-31-gates-to-adam-20stps",
            "2026-01-04_MixedPrecisionInterweavedOptimizer",
            "2026-01-07_PairedHeadAttention",
            "2026-01-10_FusedLinearReLUSquare",
            "2026-01-16_FusedSoftcappedEntropy",
            "baseline",
            "unified-optimizer",
        },
        {
            "2025-12-11_NorMuonOptimsAndFixes",
            "2025-12-14_PartialKeyOffset",
            "2025-12-18_CautiousWDAdam",
            "2025-12-19_RetieLMHead",
            "12-19-Baseline",
            "12-21-Smoothed-Scalars",
            "2025-12-22_MultiTokenPrediction",
            "extra",
        },
    ],
}


@pytest.mark.archive
@pytest.mark.slow
def test_the_archive_groups_as_before_but_where_the_facts_differ(upstream_records: Path) -> None:
    before: dict[str | None, dict[str | None, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in find_run_logs(upstream_records):
        try:
            run = parse_log(path)
        except BadInput:
            continue
        if not run.source:
            continue
        dumps = _definition_dumps(run.source)
        old = hashlib.sha256("\n".join(dumps).encode()).hexdigest() if dumps else None
        before[old][data_pipeline_hash(run.source, run.sectioned)].add(path.parent.name)
    splits = [sorted(map(sorted, groups.values())) for groups in before.values() if len(groups) > 1]
    expected = [sorted(map(sorted, groups)) for groups in SPLITS.values()]
    assert sorted(splits) == sorted(expected)
    assert sum(len(groups) for groups in before.values()) == len(before) + sum(len(g) - 1 for g in expected)
