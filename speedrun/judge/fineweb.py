"""Which tokens a run of our own trainer read: FineWeb, synthetic shards, or something else, from its log alone.

Our trainer writes, before training, the shards it found (`train_files:`, `val_files:`) and what their headers
say (`data: {...}`: each file's name, token count, and the synthetic language its header names, or null). The
published FineWeb dataset (`kjj0/fineweb10B-gpt2`) is recognised by its facts: the training shards
`fineweb_train_000001.bin` on, 100,000,000 tokens each (the 103rd and last holds 55,324,043: upstream logs
print "10255324043 across 103 files"), and one validation shard `fineweb_val_000000.bin` of 100,000,000 tokens
(upstream logs print "Validation DataLoader: total number of tokens: 100000000 across 1 files"), with no
synthetic mark. The rules ask for the validation loss on its first 10,485,760 tokens.

A log that names these facts falsely is a forgery no log can disprove; a log that names others is no record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from speedrun.judge.runlog import Evidence, RunLog

FINEWEB, SYNTHETIC, OTHER, UNKNOWN = "FineWeb", "synthetic", "other", "unknown"
TRAIN_SHARD = re.compile(r"fineweb_train_(\d{6})\.bin")
VAL_SHARD = "fineweb_val_000000.bin"
TOKENS_PER_SHARD = 100_000_000
TRAIN_SHARDS = 103
LAST_TRAIN_SHARD_TOKENS = 55_324_043
VAL_SHARD_TOKENS = 100_000_000
VAL_TOKENS = 10_485_760  # "the first 10,485,760 tokens of the FineWeb valset" (README)
MAX_LISTED = 3  # problems named in a detail


@dataclass(frozen=True)
class DataFacts:
    """What a run's log says of its tokens: FINEWEB, SYNTHETIC, OTHER or UNKNOWN (no data line), and why."""

    kind: str
    problems: tuple[str, ...]
    evidence: Evidence

    @property
    def is_fineweb(self) -> bool:
        return self.kind == FINEWEB

    @property
    def known_elsewhere(self) -> bool:
        """The log itself says the tokens are not FineWeb's: its losses and times are not a record's."""
        return self.kind in (SYNTHETIC, OTHER)

    def describe(self) -> str:
        shown = "; ".join(self.problems[:MAX_LISTED])
        more = f" (+{len(self.problems) - MAX_LISTED} more)" if len(self.problems) > MAX_LISTED else ""
        return f"{shown}{more} at {self.evidence}"


def data_facts(run: RunLog) -> DataFacts | None:
    """The facts of a run of our trainer (None for any other log), read from its data, file and config lines."""
    if not run.is_ours:
        return None
    if run.data is None:
        where = run.at(run.config_line) if run.config_line else Evidence(run.path)
        why = "no data: line (a trainer older than the data line), so the shards it read are unknown"
        return DataFacts(UNKNOWN, (why,), where)
    evidence = run.at(run.data_line)
    problems: list[str] = []
    synthetic = _synthetic_languages(run.data)
    if synthetic:
        problems.append(f"synthetic shards ({', '.join(sorted(synthetic))}), marked so in their headers")
    train, val = _shards(run.data.get("train")), _shards(run.data.get("val"))
    if train is None or val is None or run.data.get("version") != 1:
        problems.append("the data line is not in the trainer's format (version 1, train and val shard lists)")
    else:  # where the log contradicts itself first, then how its shards differ from FineWeb's
        problems += _listing_problems(run, train, val)
        problems += _train_problems(train) + _val_problems(val)
    val_tokens = _val_tokens(run.config or {})
    if val_tokens != VAL_TOKENS:
        problems.append(f"the config validates on {val_tokens!r} tokens, not FineWeb's first {VAL_TOKENS:,}")
    if not problems:
        return DataFacts(FINEWEB, (), evidence)
    return DataFacts(SYNTHETIC if synthetic else OTHER, tuple(problems), evidence)


def _val_tokens(config: dict[str, Any]) -> object:
    """The validation size a config line gives: under `data` in the trainer's nested config, at the top in its
    flat config of before. A config that gives two sizes gives no one size: both are returned."""
    data = config.get("data")
    nested = data.get("val_tokens") if isinstance(data, dict) else None
    sizes = [size for size in (config.get("val_tokens"), nested) if size is not None]
    if len(sizes) == 2 and sizes[0] != sizes[1]:
        return sizes
    return sizes[0] if sizes else None


def _synthetic_languages(data: dict[str, Any]) -> set[str]:
    marks = [data.get("synthetic")]
    for key in ("train", "val"):
        shards = data.get(key)
        if isinstance(shards, list):
            marks += [s.get("synthetic") for s in shards if isinstance(s, dict)]
    return {str(m) for m in marks if m is not None}


def _shards(value: object) -> list[tuple[str, int]] | None:
    """(file, tokens) of each shard of a data line's list, or None when it is not such a list."""
    if not isinstance(value, list) or not value:
        return None
    found = []
    for shard in value:
        if not isinstance(shard, dict):
            return None
        name, tokens = shard.get("file"), shard.get("tokens")
        if not isinstance(name, str) or not isinstance(tokens, int) or isinstance(tokens, bool):
            return None
        found.append((name, tokens))
    return found


def _train_problems(train: list[tuple[str, int]]) -> list[str]:
    problems = []
    for position, (name, tokens) in enumerate(train, start=1):
        match = TRAIN_SHARD.fullmatch(name)
        if match is None or int(match[1]) != position or position > TRAIN_SHARDS:
            expected = f"fineweb_train_{position:06d}.bin"
            problems.append(f"training shard {position} is {name!r}, not FineWeb's {expected}")
            break  # the stream is another from here on
        want = LAST_TRAIN_SHARD_TOKENS if position == TRAIN_SHARDS else TOKENS_PER_SHARD
        if tokens != want:
            problems.append(f"{name} holds {tokens:,} tokens, FineWeb's {want:,}")
    return problems


def _val_problems(val: list[tuple[str, int]]) -> list[str]:
    if [name for name, _ in val] != [VAL_SHARD]:
        return [f"validation shards {', '.join(name for name, _ in val)!r}, not FineWeb's {VAL_SHARD} alone"]
    tokens = val[0][1]
    if tokens != VAL_SHARD_TOKENS:
        return [f"{VAL_SHARD} holds {tokens:,} tokens, FineWeb's {VAL_SHARD_TOKENS:,}"]
    return []


def _listing_problems(run: RunLog, train: list[tuple[str, int]], val: list[tuple[str, int]]) -> list[str]:
    """The file lines the trainer printed must name the files the data line describes."""
    problems = []
    for key, printed, shards in (("train_files", run.train_files, train), ("val_files", run.val_files, val)):
        names = [name for name, _ in shards]
        if printed is None:
            problems.append(f"no {key}: line beside the data line")
        elif printed.split(",") != names:
            problems.append(f"the {key}: line and the data line name different files")
    return problems
