"""Which tokens a run of our trainer read, from its own lines: FineWeb's shards, synthetic ones, or others."""

from __future__ import annotations

import json
from dataclasses import replace

from speedrun.judge.fineweb import FINEWEB, OTHER, SYNTHETIC, UNKNOWN, data_facts
from speedrun.judge.parse import parse_log
from speedrun.trainer.config import get_config
from tests.conftest import ROOT
from tests.test_rules import make_run, ours

EXAMPLE = ROOT / "records" / "examples" / "2026-11-30_synthetic-h200"


def test_fineweb_is_known_by_its_names_token_counts_and_headers() -> None:
    facts = data_facts(ours(make_run()))
    assert facts is not None and facts.kind == FINEWEB and facts.problems == ()
    assert str(facts.evidence) == "a.txt:54"
    assert data_facts(make_run()) is None  # not our trainer's log


def test_the_last_published_shard_is_shorter() -> None:
    run = ours(make_run())
    data = dict(run.data or {})
    train = [{"file": f"fineweb_train_{i:06d}.bin", "tokens": 100_000_000, "synthetic": None} for i in range(1, 104)]
    train[-1]["tokens"] = 55_324_043
    data["train"] = train
    run = replace(run, data=data, train_files=",".join(str(s["file"]) for s in train))
    facts = data_facts(run)
    assert facts is not None and facts.kind == FINEWEB, facts.problems


def test_the_example_runs_read_synthetic_shards() -> None:
    run = parse_log(sorted(EXAMPLE.glob("*.txt"))[0])
    facts = data_facts(run)
    assert facts is not None and facts.kind == SYNTHETIC and facts.known_elsewhere
    assert facts.problems[0] == "synthetic shards (zipf), marked so in their headers"
    assert "fineweb_train_000001.bin holds 25,000,000 tokens, FineWeb's 100,000,000" in facts.problems


def test_shards_that_are_not_fineweb_without_a_mark() -> None:
    def kinds(**changes: object) -> tuple[str, tuple[str, ...]]:
        facts = data_facts(ours(make_run(), **changes))  # type: ignore[arg-type]
        assert facts is not None
        return facts.kind, facts.problems

    kind, problems = kinds(train_tokens=25_000_000)
    assert kind == OTHER and "fineweb_train_000001.bin holds 25,000,000 tokens, FineWeb's 100,000,000" in problems
    kind, problems = kinds(val_tokens=5_000_000)
    assert kind == OTHER and any("fineweb_val_000000.bin holds 5,000,000" in p for p in problems)
    run = ours(make_run())
    facts = data_facts(replace(run, config={**(run.config or {}), "val_tokens": 4096}))  # the tiny preset's
    assert facts is not None and facts.kind == OTHER
    assert "the config validates on 4096 tokens, not FineWeb's first 10,485,760" in facts.problems


def test_a_stream_that_skips_a_shard_or_a_listing_that_disagrees() -> None:
    run = ours(make_run())
    data = dict(run.data or {})
    data["train"] = data["train"][1:]  # the stream starts at shard 2
    facts = data_facts(replace(run, data=data, train_files=",".join(d["file"] for d in data["train"])))
    assert facts is not None and "training shard 1 is 'fineweb_train_000002.bin'" in facts.problems[0]
    facts = data_facts(replace(run, train_files="fineweb_train_000009.bin"))
    assert facts is not None and facts.problems[0] == "the train_files: line and the data line name different files"


def test_no_data_line_or_a_malformed_one() -> None:
    run = ours(make_run())
    facts = data_facts(replace(run, data=None, data_line=0))
    assert facts is not None and facts.kind == UNKNOWN and not facts.known_elsewhere
    for data in ({"version": 2}, {"version": 1, "train": 5, "val": []}, {"version": 1, "train": [{"file": 1}]}):
        facts = data_facts(replace(run, data=data))
        assert facts is not None and facts.kind == OTHER
        assert "not in the trainer's format" in facts.problems[0]


def test_the_validation_size_of_the_trainers_nested_config() -> None:
    """The trainer's config line nests the validation size under `data` now; it was at the top before."""
    run = ours(make_run())
    for recipe in ("2025-08", "2026-05"):
        facts = data_facts(replace(run, config=json.loads(get_config("small", recipe=recipe).to_json())))
        assert facts is not None and facts.kind == FINEWEB, facts.problems
    tiny = json.loads(get_config("small", "tiny").to_json())
    facts = data_facts(replace(run, config=tiny))
    assert facts is not None and "the config validates on 4096 tokens, not FineWeb's first 10,485,760" in facts.problems
    facts = data_facts(replace(run, config={**tiny, "val_tokens": 10_485_760}))  # two sizes are no one size
    assert facts is not None and facts.kind == OTHER
    assert "the config validates on [10485760, 4096] tokens" in facts.problems[0]
