"""The data pipeline: the shard format as the trainer reads it, and the loaders that feed training and validation.

This file is the data pipeline whose syntax tree the judge hashes (rule 1: the token streams must not change),
so it holds nothing else: writing shards, the synthetic languages and the FineWeb download live in
`shards.py`, where editing them changes no pinned hash.

A shard is a header of 256 little-endian int32 (magic, version, token count, then zeros in FineWeb's shards)
followed by the tokens as uint16. Synthetic shards mark themselves in the header slots FineWeb leaves at zero
(see `shard_facts`). Training reads `fineweb_train_*.bin` in name order as one stream cut into micro-batches;
validation reads the first `val_tokens` (+1 for the last target) of `fineweb_val_*.bin`.

The format functions need only numpy (the judge and `speedrun data` run without torch); the loaders import
torch when they are used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING

from speedrun.errors import BadInput

if TYPE_CHECKING:
    import numpy as np
    import torch

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
EOT_TOKEN = 50256  # GPT-2's <|endoftext|>: every document starts with it, so it doubles as BOS
# Header slots 3..9, zero in FineWeb: a synthetic shard holds the mark b"synt", its language's name (ASCII, up to
# 16 bytes, zero-padded, in slots 4..7), the language's seed and the shard's stream number.
SYNTHETIC_MARK = int.from_bytes(b"synt", "little")
SYNTHETIC_NAME_SLOTS = slice(4, 8)
SYNTHETIC_SEED_SLOT = 8
SYNTHETIC_STREAM_SLOT = 9

TRAIN_PATTERN = "fineweb_train_*.bin"
VAL_PATTERN = "fineweb_val_*.bin"


# ---------------------------------------------------------------------------------------------- the format


def _read_header(path: Path) -> np.ndarray:
    """The header of a shard as 256 int32, after checking its magic, version and that the file size matches."""
    import numpy as np

    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(HEADER_BYTES)
        size = path.stat().st_size
    except OSError as e:
        raise BadInput(path, f"cannot read shard: {e.strerror or e}") from None
    if len(raw) < HEADER_BYTES:
        raise BadInput(path, f"truncated shard: {len(raw)} bytes, shorter than the {HEADER_BYTES}-byte header")
    header = np.frombuffer(raw, dtype="<i4")
    magic, version, num_tokens = (int(x) for x in header[:3])
    if magic != SHARD_MAGIC:
        raise BadInput(path, f"not a token shard: magic number {magic}, expected {SHARD_MAGIC}")
    if version != SHARD_VERSION:
        raise BadInput(path, f"unsupported shard version {version}, expected {SHARD_VERSION}")
    if num_tokens < 0:
        raise BadInput(path, f"corrupt header: negative token count {num_tokens}")
    expected = HEADER_BYTES + 2 * num_tokens
    if size != expected:
        raise BadInput(
            path,
            f"partial or corrupt shard: {size} bytes, but its header promises {num_tokens} tokens ({expected} bytes)",
        )
    return header


def read_shard_header(path: Path) -> int:
    """The token count of a shard, after checking its magic, version and that the file size matches."""
    return int(_read_header(path)[2])


@dataclass(frozen=True)
class ShardFacts:
    """What a shard's header says: its token count, and for a synthetic shard the language that wrote it."""

    file: str  # the file's name, without its folder
    tokens: int
    synthetic: str | None  # the language's name; None for FineWeb (and any shard without the mark)


def shard_facts(path: Path) -> ShardFacts:
    header = _read_header(path)
    synthetic = None
    if int(header[3]) == SYNTHETIC_MARK:
        synthetic = header[SYNTHETIC_NAME_SLOTS].tobytes().rstrip(b"\0").decode("ascii", errors="replace") or "?"
    return ShardFacts(Path(path).name, int(header[2]), synthetic)


def read_tokens(path: Path, limit: int | None = None) -> np.ndarray:
    """The tokens of a shard (the first `limit` of them if given) as a uint16 numpy array."""
    import numpy as np

    num_tokens = read_shard_header(path)
    n = num_tokens if limit is None else min(limit, num_tokens)
    with open(path, "rb") as f:
        f.seek(HEADER_BYTES)
        tokens = np.fromfile(f, dtype="<u2", count=n)
    if len(tokens) != n:  # the file changed under us
        raise BadInput(path, f"read {len(tokens)} tokens, expected {n}")
    return tokens.astype(np.uint16, copy=False)


# ------------------------------------------------------------------------------------- finding the shards


def fetch_commands(data_dir: Path) -> str:
    """The commands that put shards into `data_dir`, for error messages."""
    return (
        f"fetch FineWeb with `speedrun data fineweb --dir {data_dir}`"
        f" or write test shards with `speedrun data synthetic --dir {data_dir}`"
    )


def _shards(data_dir: Path, pattern: str, what: str) -> list[Path]:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise BadInput(data_dir, f"no such data folder; {fetch_commands(data_dir)}")
    files = sorted(data_dir.glob(pattern))
    if not files:
        raise BadInput(data_dir, f"no {what} shards ({pattern}); {fetch_commands(data_dir)}")
    for f in files:
        read_shard_header(f)
    return files


def train_files(data_dir: Path) -> list[Path]:
    """The training shards of a data folder, in name order, each header checked."""
    return _shards(data_dir, TRAIN_PATTERN, "training")


def val_files(data_dir: Path) -> list[Path]:
    """The validation shards of a data folder, in name order, each header checked."""
    return _shards(data_dir, VAL_PATTERN, "validation")


# ------------------------------------------------------------------------------------------------ loaders


def batch_starts(
    tokens: np.ndarray, tokens_per_micro_batch: int, align_to_bos: bool, micro_steps_per_step: int = 1
) -> np.ndarray:
    """Where each micro-batch of one shard begins, in whole steps of `micro_steps_per_step` micro-batches.

    A micro-batch needs T+1 tokens (inputs plus the shifted targets). Aligned to BOS, each begins at the first
    document start at or after the end of the previous one's inputs, so no sequence opens mid-document (the
    cut tail is skipped). Unaligned, micro-batches follow each other every T tokens.

    As the record loaders do, a step begins only where the shard still holds a look-ahead window of S*T
    tokens (2*S*T when aligned, room for the skipped tails) plus one, S micro-batches of T tokens per step;
    the rest of the shard is never read. So both read the same tokens, step for step.
    """
    import numpy as np

    n, t, s = len(tokens), tokens_per_micro_batch, micro_steps_per_step
    window = s * t * (2 if align_to_bos else 1)
    if not align_to_bos:
        steps = max(0, -(-(n - window - 1) // (s * t)))  # steps j with j*s*t + window + 1 < n
        return np.arange(steps * s, dtype=np.int64) * t
    bos = np.flatnonzero(tokens == EOT_TOKEN)
    starts: list[int] = []
    pos = 0  # where the next step looks for its first document start
    while pos + window + 1 < n:
        step = []
        i = int(np.searchsorted(bos, pos, side="left"))
        # the step's S starts, then the document start where the next step begins (the records give up on a
        # document longer than the look-ahead window; here it is simply skipped, as in short test shards)
        for _ in range(s + 1):
            if i == len(bos):
                return np.asarray(starts, dtype=np.int64)
            step.append(int(bos[i]))
            i = int(np.searchsorted(bos, bos[i] + t, side="left"))
        starts += step[:s]
        pos = step[s]
    return np.asarray(starts, dtype=np.int64)


def _to_device(chunk: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    import torch

    buf = torch.from_numpy(chunk.astype(np.int64))
    buf = buf.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else buf.to(device)
    return buf[:-1].to(torch.int32), buf[1:]


class DistributedTokenLoader:
    """Training micro-batches for one rank: an endless iterator of (inputs int32, targets int64), each of
    `tokens_per_micro_batch` tokens, targets shifted by one.

    The training files form one stream cut into global micro-batches 0, 1, 2, ... in whole steps (see
    `batch_starts`); rank r of W takes micro-batches r, r+W, r+2W, ... So a step of A micro-steps on each of W
    ranks covers exactly the micro-batches of a step of W*A micro-steps on one process: the same tokens,
    whatever the GPU count. After the last shard the stream starts again from the first (`epoch` counts the
    passes)."""

    def __init__(
        self,
        files: Sequence[Path],
        tokens_per_micro_batch: int,
        rank: int,
        world_size: int,
        align_to_bos: bool = True,
        device: str | torch.device = "cpu",
        micro_steps_per_step: int = 1,
    ) -> None:
        import torch

        if not files:
            raise ValueError("no training files given")
        if tokens_per_micro_batch < 1:
            raise ValueError(f"tokens_per_micro_batch must be positive, got {tokens_per_micro_batch}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside a world of {world_size}")
        self.files = [Path(f) for f in files]
        for f in self.files:
            read_shard_header(f)
        self.tokens_per_micro_batch = tokens_per_micro_batch
        self.micro_steps_per_step = micro_steps_per_step
        self.rank = rank
        self.world_size = world_size
        self.align_to_bos = align_to_bos
        self.device = torch.device(device)
        self.epoch = 0
        self._prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-prefetch")
        self._batches = self._my_batches()

    def _load(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        tokens = read_tokens(path)
        starts = batch_starts(tokens, self.tokens_per_micro_batch, self.align_to_bos, self.micro_steps_per_step)
        return tokens, starts

    def _my_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        t = self.tokens_per_micro_batch
        global_index = 0
        # the next shard is read in the background while this one is consumed (file reads release the GIL)
        pending = self._prefetcher.submit(self._load, self.files[0])
        for shard_number in count():
            tokens, starts = pending.result()
            pending = self._prefetcher.submit(self._load, self.files[(shard_number + 1) % len(self.files)])
            if shard_number > 0 and shard_number % len(self.files) == 0:
                if global_index == 0:
                    raise BadInput(self.files[0], f"the training shards hold no complete step of {t}-token batches")
                self.epoch += 1
            first = (self.rank - global_index) % self.world_size
            for start in starts[first :: self.world_size]:
                yield _to_device(tokens[start : start + t + 1], self.device)
            global_index += len(starts)

    def __iter__(self) -> DistributedTokenLoader:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        return next(self._batches)

    def close(self) -> None:
        self._prefetcher.shutdown(wait=False, cancel_futures=True)


def val_batches(
    files: Sequence[Path],
    num_tokens: int,
    tokens_per_micro_batch: int,
    rank: int,
    world_size: int,
    device: str | torch.device = "cpu",
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Validation micro-batches for one rank: the first `num_tokens` tokens of the validation stream (plus
    one for the last target) cut into chunks of `tokens_per_micro_batch`, chunk k going to rank k % W. Across
    all ranks exactly `num_tokens` tokens are predicted; the last chunk is shorter if the size does not divide."""
    import numpy as np
    import torch

    if num_tokens < 1 or tokens_per_micro_batch < 1:
        raise ValueError("num_tokens and tokens_per_micro_batch must be positive")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside a world of {world_size}")
    needed = num_tokens + 1
    parts: list[np.ndarray] = []
    have = 0
    for f in files:
        if have >= needed:
            break
        part = read_tokens(f, needed - have)
        parts.append(part)
        have += len(part)
    if have < needed:
        where = files[0] if len(files) == 1 else ", ".join(str(f) for f in files)
        raise BadInput(where, f"holds {have} validation tokens; {needed} are needed ({num_tokens} plus one target)")
    stream = np.concatenate(parts)
    device = torch.device(device)
    for k, start in enumerate(range(0, num_tokens, tokens_per_micro_batch)):
        if k % world_size == rank:
            end = min(start + tokens_per_micro_batch, num_tokens)
            yield _to_device(stream[start : end + 1], device)
