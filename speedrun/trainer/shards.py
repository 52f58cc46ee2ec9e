"""Making token shards: the writer, the synthetic languages, and the FineWeb download.

Tooling around the data pipeline rather than part of it: the trainer reads shards through `data.py` (whose
syntax tree the judge hashes), and nothing here changes what it reads from a given file, so this module can
change without pinning a new hash.

Synthetic shards carry FineWeb's names and format, seeded content, and a mark in header slots FineWeb leaves
at zero: b"synt", the language's name, its seed and the shard's stream number (`data.shard_facts` reads it),
so a log can say which data it trained on.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from speedrun.errors import BadInput
from speedrun.trainer.data import (
    EOT_TOKEN,
    HEADER_INTS,
    SHARD_MAGIC,
    SHARD_VERSION,
    SYNTHETIC_MARK,
    SYNTHETIC_NAME_SLOTS,
    SYNTHETIC_SEED_SLOT,
    SYNTHETIC_STREAM_SLOT,
    read_shard_header,
)

if TYPE_CHECKING:
    import numpy as np

MAX_TOKEN = 65535  # uint16
VAL_SHARD_NAME = "fineweb_val_000000.bin"
SYNTHETIC_MANIFEST = "synthetic.json"
FINEWEB_REPO = "kjj0/fineweb10B-gpt2"
FINEWEB_TOKENS_PER_SHARD = 100_000_000
FINEWEB_TRAIN_SHARDS_AVAILABLE = 103


def train_shard_name(index: int) -> str:
    """FineWeb numbers its training shards from 1 (shard 0 is the validation shard)."""
    return f"fineweb_train_{index:06d}.bin"


def write_shard(path: Path, tokens: np.ndarray, synthetic: tuple[str, int, int] | None = None) -> None:
    """Write tokens as a shard, atomically: a reader never sees a half-written file under the final name.

    `synthetic` = (language name, seed, stream) marks the header of a synthetic shard."""
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
    if synthetic is not None:
        name, seed, stream = synthetic
        name_bytes = name.encode("ascii")
        slots = SYNTHETIC_NAME_SLOTS.stop - SYNTHETIC_NAME_SLOTS.start
        if not 0 < len(name_bytes) <= 4 * slots:
            raise ValueError(f"a synthetic language's name must be 1 to {4 * slots} ASCII bytes, got {name!r}")
        header[3] = SYNTHETIC_MARK
        header[SYNTHETIC_NAME_SLOTS] = np.frombuffer(name_bytes.ljust(4 * slots, b"\0"), dtype="<i4")
        header[SYNTHETIC_SEED_SLOT] = seed
        header[SYNTHETIC_STREAM_SLOT] = stream
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype("<u2", copy=False).tobytes())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------- synthetic shards


@dataclass(frozen=True)
class Order2Language:
    """A seeded order-2 Markov language over a small vocabulary, so a small model's loss falls quickly.

    Each token has a few possible successors; which of them is likeliest (Zipfian ranks) depends on the token
    before it. A model learns the successors first (bigrams) and their order next (trigrams). Any token ends
    its document with probability 1/mean_document_tokens, and every document starts with EOT. The full
    model learns all of it within a few dozen steps and then stalls near 2.1, whatever its optimiser does:
    fine for the tiny preset and the tests, too easy to tell a good recipe from a broken one.
    """

    seed: int = 0
    vocab: int = 512  # states, including EOT
    successors: int = 8
    zipf_exponent: float = 1.1
    mean_document_tokens: int = 400
    name: str = "order2"

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


@dataclass(frozen=True)
class ZipfLanguage:
    """A seeded language over the whole GPT-2 vocabulary, hard enough that the full model's loss keeps falling
    for hundreds of steps, so a broken optimiser shows.

    Token frequencies follow a Zipf law (rank r has weight 1/r^zipf_exponent) over the 50256 ids other than
    EOT, ranked in a seeded random order. Each token has `successors` likely next tokens, themselves Zipf
    draws, taken with probabilities falling as 1/j^successor_exponent; with probability `jump` the next token
    is a fresh Zipf draw instead. Each document has a topic that rotates which successor is likeliest, so
    the earlier tokens of a document tell a model how to read the next ones. Document lengths (EOT first)
    are log-normal. What a model learns, in order: the unigram law, the successors of common tokens, the
    topic from context, then, slowly, the successors of the rare tokens (the long tail that keeps the loss
    falling). About 0.1 s per million tokens.
    """

    seed: int = 0
    successors: int = 4
    zipf_exponent: float = 1.0
    successor_exponent: float = 1.5
    jump: float = 0.1
    median_document_tokens: int = 400
    document_sigma: float = 1.0  # of the log of the length
    name: str = "zipf"

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(token of each Zipf rank, cumulative rank probabilities, successors of each token (EOT included),
        cumulative successor probabilities)."""
        import numpy as np

        rng = np.random.default_rng([self.seed, 0x5EED])
        token_of_rank = rng.permutation(EOT_TOKEN).astype(np.int64)
        weights = 1.0 / np.arange(1, EOT_TOKEN + 1) ** self.zipf_exponent
        rank_cdf = np.cumsum(weights / weights.sum())
        draws = np.searchsorted(rank_cdf, rng.random((EOT_TOKEN + 1, self.successors)), side="right")
        successors = token_of_rank[draws.clip(max=EOT_TOKEN - 1)]
        successor_weights = 1.0 / np.arange(1, self.successors + 1) ** self.successor_exponent
        return token_of_rank, rank_cdf, successors, np.cumsum(successor_weights / successor_weights.sum())

    def sample(self, num_tokens: int, stream: int, chain_tokens: int = 16384) -> np.ndarray:
        """`num_tokens` tokens of independent stream number `stream`. Chains of about `chain_tokens` tokens (many
        documents each, the first opened by EOT) run side by side, vectorised, and are laid end to end."""
        import numpy as np

        token_of_rank, rank_cdf, successors, successor_cdf = self.tables()
        rng = np.random.default_rng([self.seed, stream])
        k = self.successors

        def zipf_tokens(n: int) -> np.ndarray:
            return token_of_rank[np.searchsorted(rank_cdf, rng.random(n), side="right").clip(max=EOT_TOKEN - 1)]

        def lengths(n: int) -> np.ndarray:
            drawn = rng.lognormal(np.log(self.median_document_tokens), self.document_sigma, n)
            return np.maximum(np.rint(drawn), 2).astype(np.int64)

        chains = max(1, num_tokens // chain_tokens)
        length = -(-num_tokens // chains)
        out = np.empty((length, chains), dtype=np.uint16)
        current = np.full(chains, EOT_TOKEN, dtype=np.int64)
        topic = rng.integers(0, k, chains)
        remaining = lengths(chains)
        block = 256
        for t0 in range(0, length, block):
            rows = min(block, length - t0)
            picks = np.searchsorted(successor_cdf, rng.random((rows, chains)), side="right").clip(max=k - 1)
            jumps = rng.random((rows, chains)) < self.jump
            jumped = np.zeros((rows, chains), dtype=np.int64)
            jumped[jumps] = zipf_tokens(int(jumps.sum()))
            for r in range(rows):
                out[t0 + r] = current
                remaining -= 1
                following = successors[current, (picks[r] + topic) % k]
                following = np.where(jumps[r], jumped[r], following)
                ends = remaining <= 0
                if ends.any():
                    n = int(ends.sum())
                    following[ends] = EOT_TOKEN
                    remaining[ends] = lengths(n)
                    topic[ends] = rng.integers(0, k, n)
                current = following
        return out.T.reshape(-1)[:num_tokens]


Language = (
    ZipfLanguage | Order2Language
)  # a seeded generator: sample(n, stream) is the same for the same seed and stream
LANGUAGES: dict[str, type[Language]] = {"zipf": ZipfLanguage, "order2": Order2Language}


def language(name: str, seed: int) -> Language:
    """The synthetic language called `name` ('zipf' or 'order2'), seeded."""
    if name not in LANGUAGES:
        raise BadInput(None, f"unknown synthetic language {name!r}: use {' or '.join(map(repr, LANGUAGES))}")
    return LANGUAGES[name](seed=seed)


def language_settings(lang: Language) -> dict[str, object]:
    """Every parameter of a language, for the manifest beside its shards."""
    return asdict(lang)


def write_synthetic(
    data_dir: Path,
    train_shards: int,
    tokens_per_shard: int,
    val_tokens: int,
    seed: int,
    on_shard: Callable[[Path], None] | None = None,
    language_name: str = "zipf",
) -> list[Path]:
    """Write `train_shards` training shards and one validation shard of a seeded synthetic language."""
    lang = language(language_name, seed)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(data_dir / VAL_SHARD_NAME, val_tokens, 0)]
    jobs += [(data_dir / train_shard_name(i), tokens_per_shard, i) for i in range(1, train_shards + 1)]
    written = []
    for path, num_tokens, stream in jobs:
        write_shard(path, lang.sample(num_tokens, stream), synthetic=(lang.name, seed, stream))
        written.append(path)
        if on_shard:
            on_shard(path)
    return written


# ------------------------------------------------------------------------------------------------ FineWeb


@dataclass(frozen=True)
class FetchedShard:
    """What `fetch_fineweb_shard` did with one file: 'present' (kept), 'fetched', or 'replaced' (was corrupt)."""

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
