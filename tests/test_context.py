"""The record a judged path belongs to: the day whose rules apply, its waivers, and the prior record, from the
records store or, for a checkout newer than the store, from the judged tree itself."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

from speedrun.judge.context import folder_date, record_context
from speedrun.judge.judging import judge_path
from tests.conftest import ROOT
from tests.test_judge_cli import GOOD, SOURCE, write_runs

UPSTREAM = "https://github.com/KellerJordan/modded-nanogpt/{kind}/master/records/track_1_short/{path}"
RECORD = """number = {number}
time = "{time}"
date = {date}
description = "a record"
contributors = ["@tester"]
logs = [{logs}]
pull_requests = []
{extra}
"""


def store_with(tmp_path: Path, *records: tuple[str, int, str, str, str]) -> Path:
    """records/ with the small track's file and a record.toml per (folder, number, date, links, extra lines)."""
    store = tmp_path / "store"
    (store / "track_1_short").mkdir(parents=True)
    shutil.copy(ROOT / "records" / "track_1_short" / "track.toml", store / "track_1_short" / "track.toml")
    for folder, number, day, links, extra in records:
        (store / "track_1_short" / folder).mkdir()
        text = RECORD.format(number=number, time="1.700 minutes", date=day, logs=links, extra=extra)
        (store / "track_1_short" / folder / "record.toml").write_text(text, encoding="utf-8")
    return store


def upstream(path: str) -> str:
    return '"' + UPSTREAM.format(kind="tree" if "." not in path.rsplit("/", 1)[-1] else "blob", path=path) + '"'


def tree_record(tmp_path: Path, name: str, times_ms: int, source: str = SOURCE) -> Path:
    folder = tmp_path / "checkout" / "records" / "track_1_short" / name
    write_runs(folder, GOOD, [times_ms + 40 * i for i in range(8)], source=source)
    return folder


def test_folder_dates() -> None:
    assert folder_date("2025-07-13_BosAlign") == datetime.date(2025, 7, 13)
    assert folder_date("2026-01-26-UntieValueEmbeddings") == datetime.date(2026, 1, 26)
    assert folder_date("2025-01-18") == datetime.date(2025, 1, 18)
    assert folder_date("undated_Torch210") is None and folder_date("2025-13-01_X") is None


def test_a_checkout_newer_than_the_store_compares_each_record_with_its_true_predecessor(tmp_path: Path) -> None:
    store = store_with(tmp_path, ("2026-07-01_Old", 1, "2026-07-01", "", ""))
    first = tree_record(tmp_path, "2026-08-01_First", 98_000)
    second = tree_record(tmp_path, "2026-09-01_Second", 95_000)
    (j,) = judge_path(second, records_dir=store)
    speed = next(c for c in j.checks if c.rule_id == "SR005")
    assert "2026-08-01_First (the judged tree's record before this one" in speed.detail
    assert speed.figures["prior_time_s"] == 98.14  # the mean of First's runs
    assert speed.status.value == "pass"
    # Its data pipeline is not compared: a hash read from logs of the judged tree is the submission's to forge.
    pipeline = next(c for c in j.checks if c.rule_id == "SR001")
    assert pipeline.status.value == "unchecked" and "no data-pipeline hash pinned" in pipeline.detail
    (j,) = judge_path(first, records_dir=store)
    assert "record 1, 2026-07-01" in next(c for c in j.checks if c.rule_id == "SR005").detail
    assert j.rules_date is not None and str(j.rules_date) == "2026-08-01 (folder name)"


def test_the_store_record_that_links_a_folder_gives_its_date_prior_and_waivers(tmp_path: Path) -> None:
    folder = tree_record(tmp_path, "2026-08-01_Linked", 95_000)
    waiver = '[[waivers]]\nrule = "SR008"\nreason = "timed elsewhere"\nlink = "https://example.org/pr/1"'
    store = store_with(
        tmp_path,
        ("2026-07-01_Old", 1, "2026-07-01", "", 'data_pipeline_sha256 = "' + "f" * 64 + '"'),
        ("2026-08-03_Ours", 2, "2026-08-03", upstream("2026-08-01_Linked"), waiver),
    )
    context = record_context(folder, "track_1_short", store)
    assert context.record is not None and context.record.number == 2
    assert str(context.rules_date) == "2026-08-03 (record.toml)"
    assert context.prior is not None and context.prior.number == 1
    assert [w.rule_id for w in context.waivers] == ["SR008"]
    # The prior record's pinned hash is the one compared, not anything read from logs.
    assert context.prior.pipeline_hash == "f" * 64 and context.prior.pipeline_source == "pinned in its record.toml"
    (j,) = judge_path(folder, records_dir=store, as_of=datetime.date(2024, 11, 1))
    assert str(j.rules_date) == "2024-11-01 (--as-of)"


def test_a_record_link_may_name_a_folder(tmp_path: Path) -> None:
    tree_record(tmp_path, "2026-08-01_Prior", 98_000)
    folder = tree_record(tmp_path, "2026-09-01_Next", 95_000)
    store = store_with(
        tmp_path,
        ("2026-08-01_Prior", 1, "2026-08-01", upstream("2026-08-01_Prior"), ""),
        ("2026-09-01_Next", 2, "2026-09-01", upstream("2026-09-01_Next/run00.txt"), ""),
    )
    context = record_context(folder, "track_1_short", store)
    assert context.prior is not None and context.prior.number == 1
    assert context.prior.pipeline_hash is None  # only a record.toml pin gives a hash, never the prior's logs
    (j,) = judge_path(folder, records_dir=store)
    assert j.baseline is None  # the record folder beside it is a record, though its name says "Prior"
    speed = next(c for c in j.checks if c.rule_id == "SR005")
    assert speed.status.value == "pass" and "record 1" in speed.detail, speed.detail


def test_a_re_timing_is_compared_with_the_record_it_re_times(tmp_path: Path) -> None:
    folder = tree_record(tmp_path, "2026-10-01_Retime", 99_000)
    store = store_with(
        tmp_path,
        ("2026-07-01_A", 1, "2026-07-01", "", ""),
        ("2026-08-01_B", 2, "2026-08-01", "", ""),
        ("2026-10-01_Retime", 2, "2026-10-01", upstream("2026-10-01_Retime"), "retimes = 2"),
    )
    context = record_context(folder, "track_1_short", store)
    assert context.retimes == 2 and context.prior is not None and context.prior.number == 2
    (j,) = judge_path(folder, records_dir=store)
    speed = next(c for c in j.checks if c.rule_id == "SR005")
    assert speed.status.value == "n/a" and "re-timing of record 2" in speed.detail


def test_logs_outside_any_record_folder_are_judged_by_todays_rules_against_the_current_record(
    tmp_path: Path,
) -> None:
    store = store_with(tmp_path, ("2026-07-01_A", 1, "2026-07-01", "", ""), ("2026-08-01_B", 2, "2026-08-01", "", ""))
    write_runs(tmp_path / "loose", GOOD)
    context = record_context(tmp_path / "loose", "track_1_short", store)
    assert context.rules_date.source == "today" and context.prior is not None and context.prior.number == 2


def test_a_dated_folder_outside_the_tracks_is_judged_by_the_rules_of_its_date(tmp_path: Path) -> None:
    store = store_with(tmp_path, ("2024-07-01_A", 1, "2024-07-01", "", ""), ("2026-08-01_B", 2, "2026-08-01", "", ""))
    write_runs(tmp_path / "2025-01-15_MyIdea", GOOD)
    context = record_context(tmp_path / "2025-01-15_MyIdea", "track_1_short", store)
    assert str(context.rules_date) == "2025-01-15 (folder name)"
    assert context.prior is not None and context.prior.number == 1  # the record before that date
    single = record_context(next((tmp_path / "2025-01-15_MyIdea").glob("*.txt")), "track_1_short", store)
    assert str(single.rules_date) == "2025-01-15 (folder name)"
