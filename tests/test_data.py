"""Token shards: the format, the synthetic language, the FineWeb fetch (offline, from a Hugging Face cache
layout) and the loaders' promise that any GPU count sees the same batches."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from speedrun.errors import BadInput
from speedrun.trainer.data import (
    EOT_TOKEN,
    HEADER_BYTES,
    SHARD_MAGIC,
    DistributedTokenLoader,
    batch_starts,
    read_shard_header,
    read_tokens,
    shard_facts,
    train_files,
    val_batches,
    val_files,
)
from speedrun.trainer.shards import (
    Order2Language,
    ZipfLanguage,
    train_shard_name,
    write_shard,
    write_synthetic,
)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("shards")
    write_synthetic(
        data_dir, train_shards=3, tokens_per_shard=60_000, val_tokens=20_001, seed=3, language_name="order2"
    )
    return data_dir


# ------------------------------------------------------------------------------------------------ format


def test_shard_round_trip(tmp_path: Path) -> None:
    tokens = np.array([EOT_TOKEN, 0, 1, 65535, 42], dtype=np.uint16)
    path = tmp_path / "a.bin"
    write_shard(path, tokens)
    assert path.stat().st_size == HEADER_BYTES + 2 * len(tokens)
    assert read_shard_header(path) == len(tokens)
    assert np.array_equal(read_tokens(path), tokens)
    assert np.array_equal(read_tokens(path, limit=2), tokens[:2])
    assert shard_facts(path).synthetic is None, "an unmarked header, as FineWeb's"
    assert not list(tmp_path.glob(".*tmp")), "the temporary file is renamed into place"


def test_write_shard_refuses_tokens_that_do_not_fit(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_shard(tmp_path / "a.bin", np.array([70_000]))
    with pytest.raises(ValueError):
        write_shard(tmp_path / "a.bin", np.array([-1]))
    write_shard(tmp_path / "a.bin", np.array([1, 2, 3], dtype=np.int64))  # in range: converted
    assert read_tokens(tmp_path / "a.bin").tolist() == [1, 2, 3]


def _raw_shard(path: Path, header: list[int], payload_tokens: int) -> Path:
    head = np.zeros(256, dtype="<i4")
    head[: len(header)] = header
    path.write_bytes(head.tobytes() + b"\0\0" * payload_tokens)
    return path


@pytest.mark.parametrize(
    ("header", "payload", "problem"),
    [
        ([1234, 1, 10], 10, "magic number 1234"),
        ([SHARD_MAGIC, 7, 10], 10, "version 7"),
        ([SHARD_MAGIC, 1, 10], 9, "partial or corrupt"),
        ([SHARD_MAGIC, 1, 10], 11, "partial or corrupt"),
        ([SHARD_MAGIC, 1, -5], 0, "negative token count"),
    ],
    ids=["magic", "version", "short", "long", "negative"],
)
def test_bad_shards_are_named_and_refused(tmp_path: Path, header: list[int], payload: int, problem: str) -> None:
    path = _raw_shard(tmp_path / "fineweb_train_000001.bin", header, payload)
    with pytest.raises(BadInput) as caught:
        read_shard_header(path)
    assert caught.value.path == str(path)
    assert problem in caught.value.problem


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"\0" * 100)
    with pytest.raises(BadInput, match="truncated"):
        read_shard_header(path)


def test_missing_data_names_the_commands_that_fetch_it(tmp_path: Path) -> None:
    for finder in (train_files, val_files):
        with pytest.raises(BadInput) as caught:
            finder(tmp_path / "nowhere")
        assert "speedrun data fineweb --dir" in str(caught.value)
        assert "speedrun data synthetic --dir" in str(caught.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="no training shards"):
        train_files(tmp_path / "empty")


def test_a_corrupt_shard_is_never_listed_for_training(shards: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    data_dir.mkdir()
    for f in shards.glob("*.bin"):
        (data_dir / f.name).write_bytes(f.read_bytes())
    assert [f.name for f in train_files(data_dir)] == [train_shard_name(i) for i in (1, 2, 3)]
    with open(data_dir / train_shard_name(2), "r+b") as f:
        f.truncate(HEADER_BYTES + 100)
    with pytest.raises(BadInput, match=train_shard_name(2)):
        train_files(data_dir)


# -------------------------------------------------------------------------------------- synthetic language


def test_synthetic_is_seeded_and_shaped_like_fineweb(shards: Path) -> None:
    names = sorted(p.name for p in shards.glob("*.bin"))
    assert names == [*(train_shard_name(i) for i in (1, 2, 3)), "fineweb_val_000000.bin"]
    assert read_shard_header(shards / "fineweb_val_000000.bin") == 20_001
    language = Order2Language(seed=3)
    assert np.array_equal(language.sample(60_000, 1), read_tokens(shards / train_shard_name(1)))
    assert not np.array_equal(language.sample(5000, 1), language.sample(5000, 2)), "streams differ"
    assert not np.array_equal(language.sample(5000, 1), Order2Language(seed=4).sample(5000, 1)), "seeds differ"
    tokens = read_tokens(shards / train_shard_name(1))
    assert tokens[0] == EOT_TOKEN
    assert tokens.max() <= EOT_TOKEN
    assert len(np.unique(tokens)) <= language.vocab


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _conditional_entropy(tokens: np.ndarray, order: int) -> float:
    """Entropy of the next token given the `order` tokens before it, estimated from counts."""
    context = np.zeros(len(tokens) - order, dtype=np.int64)
    for k in range(order):
        context = context * 65536 + tokens[k : len(tokens) - order + k]
    _, context_ids = np.unique(context, return_inverse=True)
    joint = np.unique(context_ids * 65536 + tokens[order:], return_counts=True)[1]
    return _entropy(joint) - _entropy(np.bincount(context_ids))


def test_synthetic_language_has_structure_to_learn() -> None:
    """Each token of context must cut the next token's entropy: bigrams far below the unigram entropy (what a
    tiny model learns in a few dozen steps), the token before that lower still. Documents of sensible length."""
    tokens = Order2Language(seed=0).sample(1_000_000, 1).astype(np.int64)
    unigram = _entropy(np.bincount(tokens))
    bigram = _conditional_entropy(tokens, 1)
    trigram = _conditional_entropy(tokens, 2)
    assert unigram > 5.5
    assert bigram < 2.5
    assert trigram < bigram - 0.15
    mean_doc = len(tokens) / np.count_nonzero(tokens == EOT_TOKEN)
    assert 200 < mean_doc < 800


def test_zipf_language_spans_the_vocabulary_with_a_long_tail_to_learn(tmp_path: Path) -> None:
    """The harder language: seeded, most of the GPT-2 vocabulary in use, a unigram entropy a model drops from
    quickly, a much lower bigram entropy it reaches only by learning tens of thousands of successor tables, and
    log-normal documents. Its shards name it in their headers."""
    language = ZipfLanguage(seed=0)
    tokens = language.sample(1_000_000, 1)
    assert np.array_equal(tokens, language.sample(1_000_000, 1)), "seeded"
    assert not np.array_equal(tokens[:5000], language.sample(5000, 2)), "streams differ"
    assert tokens[0] == EOT_TOKEN and tokens.max() <= EOT_TOKEN
    tokens = tokens.astype(np.int64)
    assert len(np.unique(tokens)) > 20_000
    unigram, bigram = _entropy(np.bincount(tokens)), _conditional_entropy(tokens, 1)
    assert unigram > 5.5 and bigram < unigram - 3
    lengths = np.diff(np.flatnonzero(tokens == EOT_TOKEN))
    assert 300 < np.median(lengths) < 500 and lengths.max() > 3000

    write_synthetic(tmp_path, train_shards=1, tokens_per_shard=5000, val_tokens=3000, seed=7)
    facts = shard_facts(tmp_path / train_shard_name(1))
    assert (facts.file, facts.tokens, facts.synthetic) == (train_shard_name(1), 5000, "zipf")
    assert read_shard_header(tmp_path / "fineweb_val_000000.bin") == 3000


def test_synthetic_shards_are_marked_in_slots_fineweb_leaves_at_zero(shards: Path) -> None:
    header = np.fromfile(shards / train_shard_name(2), dtype="<i4", count=256)
    assert header[3].tobytes() == b"synt" and header[4:8].tobytes().rstrip(b"\0") == b"order2"
    assert (header[8], header[9]) == (3, 2)  # seed, stream
    assert not header[10:].any()
    assert shard_facts(shards / train_shard_name(2)).synthetic == "order2"


# ------------------------------------------------------------------------------------------------ loaders


def record_loader_starts(tokens: np.ndarray, t: int, s: int, aligned: bool) -> list[int]:
    """The starts of the micro-batches a record's loader takes from one shard, walked as the records describe it
    (record 28's BOS-aligned loader, medium record 8's plain one): at each step, move on to the next shard unless
    `pos + window + 1` tokens remain (window = S*T, twice that aligned); aligned, each sequence starts at the
    first document start at or after `pos`, and `pos` then moves to the first one at least T further."""
    window = s * t * (2 if aligned else 1)
    starts, pos = [], 0
    bos = [i for i, token in enumerate(tokens.tolist()) if token == EOT_TOKEN]
    while pos + window + 1 < len(tokens):
        if not aligned:
            starts += [pos + m * t for m in range(s)]
            pos += s * t
            continue
        ahead = [b for b in bos if pos <= b < pos + window]
        step, start = [], ahead[0]
        for b in ahead[1:]:
            if b - start >= t:
                step.append(start)
                start = b
                if len(step) == s:
                    break
        starts += step
        pos = start
    return starts


@pytest.mark.parametrize("aligned", [True, False], ids=["bos", "plain"])
def test_batch_starts_are_the_record_loaders_starts_and_drop_the_same_tail(aligned: bool) -> None:
    tokens = Order2Language(seed=1).sample(50_000, 1)
    starts = batch_starts(tokens, 1024, align_to_bos=aligned, micro_steps_per_step=4)
    assert starts.tolist() == record_loader_starts(tokens, 1024, 4, aligned)
    assert len(starts) % 4 == 0 and len(starts) >= 4 * 5, "whole steps only"
    assert starts[-1] + 1024 + 1 <= len(tokens)
    if aligned:
        assert (tokens[starts] == EOT_TOKEN).all()
        assert (np.diff(starts) >= 1024).all()
        for a, b in itertools.pairwise(starts):  # nothing skipped but the cut tail of the document at each end
            assert not (tokens[a + 1024 : b] == EOT_TOKEN).any()


@pytest.mark.parametrize("align", [True, False], ids=["bos", "plain"])
@pytest.mark.parametrize("world_size", [2, 4])
def test_every_world_size_sees_the_single_process_batches(shards: Path, world_size: int, align: bool) -> None:
    files = train_files(shards)
    tokens_per_micro = 512
    steps, micro_steps = 30, 4  # a global step of 4 micro-batches; 30 steps run past a shard boundary
    single = DistributedTokenLoader(files, tokens_per_micro, 0, 1, align_to_bos=align, micro_steps_per_step=micro_steps)
    expected = [next(single) for _ in range(steps * micro_steps)]
    ranks = [
        DistributedTokenLoader(
            files, tokens_per_micro, r, world_size, align_to_bos=align, micro_steps_per_step=micro_steps
        )
        for r in range(world_size)
    ]
    for step in range(steps):
        global_batch = [next(ranks[r]) for _ in range(micro_steps // world_size) for r in range(world_size)]
        reference = expected[step * micro_steps : (step + 1) * micro_steps]
        got = sorted(torch.cat(b).tolist() for b in global_batch)
        assert got == sorted(torch.cat(b).tolist() for b in reference), f"step {step}"
    for loader in [single, *ranks]:
        loader.close()


def test_loader_batches_are_shifted_pairs_and_wrap_around(shards: Path) -> None:
    files = train_files(shards)
    loader = DistributedTokenLoader(files, 1000, 0, 1)
    inputs, targets = next(loader)
    assert inputs.dtype == torch.int32 and targets.dtype == torch.int64
    assert inputs.shape == targets.shape == (1000,)
    assert inputs[0].item() == EOT_TOKEN
    assert torch.equal(inputs[1:].long(), targets[:-1])
    stream = read_tokens(files[0]).astype(np.int64)
    assert torch.equal(targets, torch.from_numpy(stream[1:1001]))
    per_epoch = sum(len(batch_starts(read_tokens(f), 1000, True)) for f in files)
    assert per_epoch > 0
    for _ in range(per_epoch - 1):
        next(loader)
    assert loader.epoch == 0
    again, _ = next(loader)
    assert loader.epoch == 1
    assert torch.equal(again, inputs), "the second pass starts from the first batch again"
    loader.close()


def test_loader_refuses_shards_too_short_for_a_micro_batch(tmp_path: Path) -> None:
    write_shard(tmp_path / "fineweb_train_000001.bin", np.full(100, EOT_TOKEN, dtype=np.uint16))
    loader = DistributedTokenLoader([tmp_path / "fineweb_train_000001.bin"], 1000, 0, 1)
    with pytest.raises(BadInput, match="no complete step"):
        next(loader)
    loader.close()


@pytest.mark.parametrize(("world_size", "micro"), [(1, 4096), (2, 4096), (3, 3000), (4, 7000)])
def test_val_batches_cover_exactly_the_requested_tokens(shards: Path, world_size: int, micro: int) -> None:
    files = val_files(shards)
    num_tokens = 20_000
    per_rank = [list(val_batches(files, num_tokens, micro, rank, world_size)) for rank in range(world_size)]
    chunks = sum(len(batches) for batches in per_rank)
    assert chunks == -(-num_tokens // micro)
    # chunk k went to rank k % W: dealt back in that order they must rebuild the stream exactly
    in_order = [per_rank[k % world_size][k // world_size] for k in range(chunks)]
    stream = torch.from_numpy(read_tokens(files[0]).astype(np.int64))
    assert torch.equal(torch.cat([i for i, _ in in_order]).long(), stream[:num_tokens])
    assert torch.equal(torch.cat([t for _, t in in_order]), stream[1 : num_tokens + 1])


def test_val_batches_refuse_a_short_validation_shard(shards: Path) -> None:
    with pytest.raises(BadInput, match="20002 are needed"):
        list(val_batches(val_files(shards), 20_001, 4096, 0, 1))


# ----------------------------------------------------------------------------------- FineWeb, offline


COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _hf_cache(root: Path, train_shards: int) -> Path:
    """A Hugging Face hub cache holding a small, valid copy of the FineWeb dataset repo."""
    repo = root / "hub" / "datasets--kjj0--fineweb10B-gpt2"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    language = Order2Language(seed=9)
    write_shard(snapshot / "fineweb_val_000000.bin", language.sample(3000, 0))
    for i in range(1, train_shards + 1):
        write_shard(snapshot / train_shard_name(i), language.sample(3000 + i, i))
    return snapshot


def _fetch(cache: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_CACHE": str(cache / "hub"), "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
    env.pop("HF_HOME", None)
    command = [sys.executable, "-m", "speedrun", "data", "fineweb", "--dir", str(data_dir), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def _statuses(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert proc.returncode == 0, proc.stderr
    return {Path(row["file"]).name: row["status"] for row in json.loads(proc.stdout)["files"]}


def test_fineweb_fetch_offline_copies_validates_and_repairs(tmp_path: Path) -> None:
    snapshot = _hf_cache(tmp_path / "cache", train_shards=3)
    data_dir = tmp_path / "fineweb"

    first = _statuses(_fetch(tmp_path / "cache", data_dir, "--train-shards", "2", "--json"))
    assert first == {"fineweb_val_000000.bin": "fetched", **{train_shard_name(i): "fetched" for i in (1, 2)}}
    for name in first:
        assert (data_dir / name).read_bytes() == (snapshot / name).read_bytes()
        assert not (data_dir / name).is_symlink()

    again = _statuses(_fetch(tmp_path / "cache", data_dir, "--train-shards", "3", "--json"))
    assert set(again.values()) == {"present", "fetched"} and again[train_shard_name(3)] == "fetched"

    damaged = data_dir / train_shard_name(2)
    with open(damaged, "r+b") as f:
        f.truncate(HEADER_BYTES + 10)
    repaired = _fetch(tmp_path / "cache", data_dir, "--train-shards", "3")
    assert repaired.returncode == 0, repaired.stderr
    assert "was corrupt" in repaired.stderr and train_shard_name(2) in repaired.stderr
    assert damaged.read_bytes() == (snapshot / train_shard_name(2)).read_bytes()
    assert not list(data_dir.glob("*.corrupt"))


def test_fineweb_fetch_refuses_a_corrupt_copy_and_keeps_it_out_of_training(tmp_path: Path) -> None:
    snapshot = _hf_cache(tmp_path / "cache", train_shards=2)
    data_dir = tmp_path / "fineweb"
    data_dir.mkdir()
    header = np.zeros(256, dtype="<i4")
    header[:3] = (SHARD_MAGIC, 1, 5000)
    (snapshot / train_shard_name(2)).write_bytes(header.tobytes() + b"\0" * 100)  # partial in the cache
    (data_dir / train_shard_name(2)).write_bytes(b"garbage")  # and garbage in the folder

    proc = _fetch(tmp_path / "cache", data_dir, "--train-shards", "2")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert train_shard_name(2) in lines[0] and "partial or corrupt" in lines[0]
    assert not (data_dir / train_shard_name(2)).exists(), "the bad file is out of the training glob"
    assert (data_dir / f"{train_shard_name(2)}.corrupt").read_bytes() == b"garbage"
    assert [f.name for f in train_files(data_dir)] == [train_shard_name(1)]


def test_fineweb_fetch_without_network_or_cache_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "cache" / "hub").mkdir(parents=True)
    proc = _fetch(tmp_path / "cache", tmp_path / "fineweb", "--train-shards", "1")
    assert proc.returncode == 2
    assert "fineweb_val_000000.bin" in proc.stderr and "download failed" in proc.stderr
    assert "Traceback" not in proc.stderr
