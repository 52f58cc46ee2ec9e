"""The 2026-05 recipe's loader against record 84's own (taken from its published log; see tests/record84.py
for why running it is allowed in tests): the same micro-batches of capped documents, the same cu_seqlens and
bigram indices, across a change of batch size and document cap, and the same validation chunks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from speedrun.trainer.data import train_files, val_files
from speedrun.trainer.documents import DocumentLoader, val_document_batches
from speedrun.trainer.layers.embeddings import bigram_hash
from speedrun.trainer.shards import write_synthetic
from tests.record84 import load

pytestmark = pytest.mark.archive

NAMES = ["_load_data_shard", "BOS_ID", "TRAIN_MAX_NUM_DOCS", "Shard", "get_bigram_hash", "next_multiple_of_n",
         "distributed_data_generator"]  # fmt: skip
# the record reads shards into pinned memory and sends batches to CUDA: on CPU, ordinary memory
ON_CPU = {"pin_memory=True": "pin_memory=False", "device='cuda'": "device='cpu'"}


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("documents")
    write_synthetic(folder, train_shards=4, tokens_per_shard=50_000, val_tokens=40_000, seed=3, language_name="zipf")
    return folder


def test_training_micro_batches_are_the_records(upstream_records: Path, shards: Path) -> None:
    record = load(upstream_records, NAMES, replace=ON_CPU)
    record["args"].bigram_vocab_size = 50304 * 5
    # stage by stage: (global batch, document cap), 8 micro-batches each on one process
    stages = [(8 * 1024, 112), (16 * 1024, 256), (24 * 1024, 256)]
    theirs = record["distributed_data_generator"](
        str(shards / "fineweb_train_*.bin"), stages[0][0], stages[0][1], grad_accum_steps=8
    )
    ours = DocumentLoader(train_files(shards), rank=0, world_size=1)
    for stage, (batch_tokens, cap) in enumerate(stages):
        for micro in range(8):
            # the record's loader is told of a new stage with the first batch of it
            send = (batch_tokens, cap, 8) if stage and micro == 0 else None
            inputs, targets, cu, bigrams, _ = theirs.send(send) if send else next(theirs)
            mine = ours.next(batch_tokens // 8, cap)
            assert torch.equal(mine.inputs, inputs) and torch.equal(mine.targets, targets), (batch_tokens, micro)
            assert torch.equal(mine.cu_seqlens, cu), (batch_tokens, micro)
            assert torch.equal(bigram_hash(mine.inputs, 50304 * 5), bigrams)
    assert ours.shard >= 1, "the micro-batches ran into the next shard, as the record's did"
    lengths = torch.diff(mine.cu_seqlens)
    assert lengths.max() <= 256 and (lengths > 0).sum() > 1  # capped documents, several of them


def test_validation_chunks_are_the_records(upstream_records: Path, shards: Path) -> None:
    record = load(upstream_records, NAMES, replace=ON_CPU)
    chunk = 4096
    theirs = record["distributed_data_generator"](
        str(shards / "fineweb_val_*.bin"), 8 * chunk, -1, grad_accum_steps=8, align_to_bos=False
    )
    for mine in val_document_batches(val_files(shards), 8 * chunk, chunk, rank=0, world_size=1):
        inputs, targets, cu, _, _ = next(theirs)
        assert torch.equal(mine.inputs, inputs) and torch.equal(mine.targets, targets)
        assert torch.equal(mine.cu_seqlens, cu)


def test_processes_share_the_documents_of_one_process_run(shards: Path) -> None:
    one = DocumentLoader(train_files(shards), rank=0, world_size=1)
    two = [DocumentLoader(train_files(shards), rank=r, world_size=2) for r in range(2)]
    sequence = [one.next(512, 112).inputs for _ in range(4)]
    split = [two[r].next(512, 112).inputs for _ in range(2) for r in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(sequence, split, strict=True))
