"""Token shards: the file format, FineWeb and synthetic shards, and the loaders that feed training and validation.

A shard is a header of 256 little-endian int32 (magic, version, token count, then zeros) followed by the
tokens as uint16. Training reads `fineweb_train_*.bin` in name order as one stream cut into micro-batches;
validation reads the first `val_tokens` (+1 for the last target) of `fineweb_val_*.bin`.

The format functions need only numpy (the judge and `speedrun data` run without torch); the loaders import
torch when they are used.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
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
MAX_TOKEN = 65535  # uint16

TRAIN_PATTERN = "fineweb_train_*.bin"
VAL_PATTERN = "fineweb_val_*.bin"
VAL_SHARD_NAME = "fineweb_val_000000.bin"

FINEWEB_REPO = "kjj0/fineweb10B-gpt2"
FINEWEB_TOKENS_PER_SHARD = 100_000_000
FINEWEB_TRAIN_SHARDS_AVAILABLE = 103
SYNTHETIC_MANIFEST = "synthetic.json"


def train_shard_name(index: int) -> str:
    """FineWeb numbers its training shards from 1 (shard 0 is the validation shard)."""
    return f"fineweb_train_{index:06d}.bin"


# ---------------------------------------------------------------------------------------------- the format


def read_shard_header(path: Path) -> int:
    """The token count of a shard, after checking its magic, version and that the file size matches."""
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
    magic, version, num_tokens = (int(x) for x in np.frombuffer(raw, dtype="<i4", count=3))
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
    return num_tokens


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


def load_shard(path: Path) -> torch.Tensor:
    """All tokens of a shard as a uint16 torch tensor."""
    import torch

    return torch.from_numpy(read_tokens(path))


def write_shard(path: Path, tokens: np.ndarray) -> None:
    """Write tokens as a shard, atomically: a reader never sees a half-written file under the final name."""
    import numpy as np

    path = Path(path)
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise ValueError(f"tokens must be 1-D, got shape {tokens.shape}")
    if tokens.dtype != np.uint16:
        if not np.issubdtype(tokens.dtype, np.integer) or (
            len(tokens) and (tokens.min() < 0 or tokens.max() > MAX_TOKEN)
        ):
            raise ValueError(f"tokens must fit uint16, got {tokens.dtype}")
        tokens = tokens.astype(np.uint16)
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:3] = (SHARD_MAGIC, SHARD_VERSION, len(tokens))
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype("<u2", copy=False).tobytes())
    os.replace(tmp, path)


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


def batch_starts(tokens: np.ndarray, tokens_per_micro_batch: int, align_to_bos: bool) -> np.ndarray:
    """Where each micro-batch of one shard begins. A micro-batch needs T+1 tokens (inputs plus the shifted
    targets) and never crosses a shard's end. Aligned to BOS, each begins at the first document start at or
    after the end of the previous one's inputs, so no sequence opens mid-document (the cut tail is skipped)."""
    import numpy as np

    n, t = len(tokens), tokens_per_micro_batch
    if not align_to_bos:
        return np.arange(0, max(n - t, 0), t, dtype=np.int64)
    bos = np.flatnonzero(tokens == EOT_TOKEN)
    starts: list[int] = []
    i = 0
    while i < len(bos) and bos[i] + t + 1 <= n:
        starts.append(int(bos[i]))
        i = int(np.searchsorted(bos, bos[i] + t, side="left"))
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

    The training files form one stream cut into global micro-batches 0, 1, 2, ... (see `batch_starts`); rank r
    of W takes micro-batches r, r+W, r+2W, ... So a step of A micro-steps on each of W ranks covers exactly
    the micro-batches of a step of W*A micro-steps on one process: the same tokens, whatever the GPU count.
    After the last shard the stream starts again from the first (`epoch` counts the passes)."""

    def __init__(
        self,
        files: Sequence[Path],
        tokens_per_micro_batch: int,
        rank: int,
        world_size: int,
        align_to_bos: bool = True,
        device: str | torch.device = "cpu",
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
        self.rank = rank
        self.world_size = world_size
        self.align_to_bos = align_to_bos
        self.device = torch.device(device)
        self.epoch = 0
        self._prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-prefetch")
        self._batches = self._my_batches()

    def _load(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        tokens = read_tokens(path)
        return tokens, batch_starts(tokens, self.tokens_per_micro_batch, self.align_to_bos)

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
                    raise BadInput(self.files[0], f"the training shards hold no complete micro-batch of {t} tokens")
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


# ---------------------------------------------------------------------------------------- synthetic shards


@dataclass(frozen=True)
class SyntheticLanguage:
    """A seeded order-2 Markov language over a small vocabulary, so a small model's loss falls quickly.

    Each token has a few possible successors; which of them is likeliest (Zipfian ranks) depends on the token
    before it. A model learns the successors first (bigrams) and their order next (trigrams). Any token ends
    its document with probability 1/mean_document_tokens, and every document starts with EOT.
    """

    seed: int = 0
    vocab: int = 512  # states, including EOT
    successors: int = 8
    zipf_exponent: float = 1.1
    mean_document_tokens: int = 400

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(token id of each state, successor states of each state, rank shift of each previous state,
        probabilities of the successor ranks)."""
        import numpy as np

        rng = np.random.default_rng([self.seed, 0x5EED])
        token_of_state = np.empty(self.vocab, dtype=np.uint16)
        token_of_state[0] = EOT_TOKEN
        token_of_state[1:] = rng.choice(EOT_TOKEN, size=self.vocab - 1, replace=False)
        # successors never include state 0: documents end only through the end-of-document draw
        successors = rng.integers(1, self.vocab, size=(self.vocab, self.successors), dtype=np.int32)
        shift = rng.integers(0, self.successors, size=self.vocab, dtype=np.int32)
        weights = 1.0 / np.arange(1, self.successors + 1) ** self.zipf_exponent
        return token_of_state, successors, shift, weights / weights.sum()

    def sample(self, num_tokens: int, stream: int, parallel: int = 16384) -> np.ndarray:
        """`num_tokens` tokens of independent stream number `stream`: `parallel` chains run side by side,
        each starting with EOT, and are laid end to end."""
        import numpy as np

        token_of_state, successors, shift, probs = self.tables()
        rng = np.random.default_rng([self.seed, stream])
        chains = max(1, min(parallel, num_tokens // 1024))
        length = -(-num_tokens // chains)
        states = np.empty((length, chains), dtype=np.int32)
        prev = np.zeros(chains, dtype=np.int32)
        cur = np.zeros(chains, dtype=np.int32)
        cdf = np.cumsum(probs)
        block = 256
        for t0 in range(0, length, block):
            rows = min(block, length - t0)
            picks = np.searchsorted(cdf, rng.random((rows, chains)), side="right").clip(max=self.successors - 1)
            ends = rng.random((rows, chains)) < 1.0 / self.mean_document_tokens
            for r in range(rows):
                states[t0 + r] = cur
                nxt = successors[cur, (picks[r] + shift[prev]) % self.successors]
                nxt[ends[r]] = 0
                prev, cur = cur, nxt
        return token_of_state[states.T.reshape(-1)[:num_tokens]]


def write_synthetic(
    data_dir: Path,
    train_shards: int,
    tokens_per_shard: int,
    val_tokens: int,
    seed: int,
    on_shard: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Write `train_shards` training shards and one validation shard of the seeded synthetic language."""
    language = SyntheticLanguage(seed=seed)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(data_dir / VAL_SHARD_NAME, val_tokens, 0)]
    jobs += [(data_dir / train_shard_name(i), tokens_per_shard, i) for i in range(1, train_shards + 1)]
    written = []
    for path, num_tokens, stream in jobs:
        write_shard(path, language.sample(num_tokens, stream))
        written.append(path)
        if on_shard:
            on_shard(path)
    return written


# ------------------------------------------------------------------------------------------------ FineWeb


@dataclass(frozen=True)
class FetchedShard:
    """What `fetch_fineweb` did with one file: 'present' (kept), 'fetched', or 'replaced' (was corrupt)."""

    path: Path
    status: str
    problem: str = ""


def fineweb_shard_names(train_shards: int) -> list[str]:
    if not 1 <= train_shards <= FINEWEB_TRAIN_SHARDS_AVAILABLE:
        raise BadInput(None, f"--train-shards must be 1..{FINEWEB_TRAIN_SHARDS_AVAILABLE}, got {train_shards}")
    return [VAL_SHARD_NAME] + [train_shard_name(i) for i in range(1, train_shards + 1)]


def _hub_download(name: str, force: bool = False) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(FINEWEB_REPO, name, repo_type="dataset", force_download=force))
    except (OSError, EntryNotFoundError, ValueError) as e:  # ValueError: force_download in offline mode
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise BadInput(f"{FINEWEB_REPO}/{name}", f"download failed: {first_line}") from None


def fetch_fineweb_shard(data_dir: Path, name: str) -> FetchedShard:
    """Make `data_dir/name` a valid copy of the FineWeb shard. A corrupt file is moved aside (out of the
    training glob) at once and deleted once its replacement is in place; a good file is kept as is."""
    target = Path(data_dir) / name
    aside = target.with_name(f"{name}.corrupt")
    problem = ""
    if target.exists():
        try:
            read_shard_header(target)
            return FetchedShard(target, "present")
        except BadInput as e:
            problem = e.problem
            os.replace(target, aside)
    try:
        cached = _valid_cached_copy(name)
    except BadInput as e:
        if aside.exists():
            raise BadInput(e.path, f"{e.problem} (the corrupt copy was moved to {aside})") from None
        raise
    tmp = target.with_name(f".{name}.tmp")
    shutil.copyfile(cached, tmp)  # a copy, not a link: damage to one must not spread to the other
    read_shard_header(tmp)
    os.replace(tmp, target)
    if aside.exists():
        aside.unlink()
    return FetchedShard(target, "replaced" if problem else "fetched", problem)


def _valid_cached_copy(name: str) -> Path:
    """The shard in the Hugging Face cache, downloaded if needed; a bad cached copy is fetched once more."""
    cached = _hub_download(name)
    try:
        read_shard_header(cached)
    except BadInput as bad:
        try:
            cached = _hub_download(name, force=True)
        except BadInput as again:
            raise BadInput(cached, f"{bad.problem}; fetching it again failed: {again.problem}") from None
        read_shard_header(cached)
    return cached


def fetch_fineweb(
    data_dir: Path, train_shards: int, on_shard: Callable[[FetchedShard], None] | None = None
) -> list[FetchedShard]:
    """Fetch the validation shard and the first `train_shards` training shards into `data_dir`."""
    names = fineweb_shard_names(train_shards)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        result = fetch_fineweb_shard(data_dir, name)
        results.append(result)
        if on_shard:
            on_shard(result)
    return results
