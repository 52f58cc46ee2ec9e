"""The records/ store: the published history loads, matches the reference tables, and bad TOML is refused."""

from __future__ import annotations

import csv
import datetime
from pathlib import Path

import pytest

from speedrun.errors import BadInput
from speedrun.store import (
    RECORD_FILE,
    current_record,
    load_records,
    local_log_path,
    parse_time,
    upstream_url,
)
from speedrun.tracks import split_at_track
from tests.conftest import ROOT

RECORDS = ROOT / "records"

GOOD = """\
number = 3
time = "2.5 minutes"
date = 2025-01-02
description = "A record"
contributors = ["@someone"]
logs = []
pull_requests = []
"""


def write_record(root: Path, track: str, folder: str, text: str) -> Path:
    path = root / track / folder / RECORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_published_history_is_complete() -> None:
    records = load_records(RECORDS)
    small = [r for r in records if r.track == "track_1_short"]
    medium = [r for r in records if r.track == "track_2_medium"]
    assert sorted({r.number for r in small}) == list(range(1, 85))
    assert sorted({r.number for r in medium}) == list(range(1, 19))
    retimings = [r for r in small if r.is_retiming]
    assert [(r.number, r.time_text) for r in retimings] == [(21, "2.997 minutes"), (21, "3.014 minutes")]
    assert [r.time_text for r in small if r.number == 21] == ["2.933 minutes", "2.997 minutes", "3.014 minutes"]
    for record in records:
        assert record.folder.parent.name == record.track
        assert record.folder.name.split("_", 1)[0] == (record.date.isoformat() if record.date else "undated")


def test_records_match_the_reference_tables(reference_leaderboard: Path) -> None:
    records = load_records(RECORDS)
    with reference_leaderboard.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == len(records)
    for row, record in zip(rows, records, strict=True):
        where = f"{row['track']} #{row['number']}"
        assert (record.track, record.number, record.time_text) == (row["track"], int(row["number"]), row["time"]), where
        published_date = datetime.datetime.strptime(row["date"], "%m/%d/%y").date() if row["date"] else None
        assert record.date == published_date, where
        assert record.description == row["description"], where
        assert record.log_urls == ((upstream_url(row["logs"]),) if row["logs"] else ()), where
        assert record.pr_urls == tuple(row["pull_requests"].split()), where
        if record.is_retiming:
            assert row["contributors"].startswith(f"not a new record, just re-timing #{record.retimes}"), where
        else:
            assert ", ".join(record.contributors) == row["contributors"].strip().strip("-").strip(), where


def test_current_record_is_the_highest_number_and_its_latest_timing(tmp_path: Path) -> None:
    assert current_record("track_1_short", RECORDS).number == 84  # type: ignore[union-attr]
    assert current_record("track_2_medium", RECORDS).time_text == "17.35 minutes"  # type: ignore[union-attr]
    write_record(tmp_path, "track_1_short", "2025-01-02_A", GOOD)
    retiming = GOOD.replace("2025-01-02", "2025-03-04").replace('"2.5 minutes"', '"2.6 minutes"') + "retimes = 3\n"
    write_record(tmp_path, "track_1_short", "2025-03-04_B", retiming)
    top = current_record("track_1_short", tmp_path)
    assert top is not None and top.is_retiming and top.time_seconds == pytest.approx(156.0)
    assert current_record("track_2_medium", tmp_path) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45 minutes", 2700.0), ("2.933 minutes", 175.98), ("5.8 hours", 20880.0), ("25.95 minutes*", 1557.0)],
)
def test_parse_time(text: str, seconds: float) -> None:
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["2.9 min", "fast", "-3 minutes", "3 minutes **", ""])
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


BAD_CASES = {
    "malformed TOML": (GOOD.replace('time = "2.5 minutes"', "time = 2.5 minutes"), "malformed TOML"),
    "missing field": (GOOD.replace('description = "A record"\n', ""), "missing field 'description'"),
    "unknown field": (GOOD + 'descripton = "typo"\n', "unknown field 'descripton'"),
    "bad time": (GOOD.replace('"2.5 minutes"', '"2.5 mins"'), "field 'time'"),
    "number type": (GOOD.replace("number = 3", 'number = "3"'), "field 'number'"),
    "future date": (
        GOOD.replace("2025-01-02", (datetime.date.today() + datetime.timedelta(days=2)).isoformat()),
        "future",
    ),
    "datetime": (GOOD.replace("2025-01-02", "2025-01-02T10:00:00"), "field 'date'"),
    "missing log": (GOOD.replace("logs = []", 'logs = ["run.txt"]'), "field 'logs'"),
    "escaping log": (GOOD.replace("logs = []", 'logs = ["../other/run.txt"]'), "field 'logs'"),
    "pr not a URL": (GOOD.replace("pull_requests = []", 'pull_requests = ["#12"]'), "field 'pull_requests'"),
    "retimes elsewhere": (GOOD + "retimes = 2\n", "field 'retimes'"),
    "contributors type": (GOOD.replace('["@someone"]', '"@someone"'), "field 'contributors'"),
}


@pytest.mark.parametrize("case", BAD_CASES, ids=list(BAD_CASES))
def test_bad_record_names_file_and_field(tmp_path: Path, case: str) -> None:
    text, problem = BAD_CASES[case]
    path = write_record(tmp_path, "track_1_short", "2025-01-02_A", text)
    with pytest.raises(BadInput) as e:
        load_records(tmp_path)
    message = str(e.value)
    assert message.startswith(str(path)) and problem in message, message
    assert "\n" not in message


def test_duplicate_number_and_orphan_retiming(tmp_path: Path) -> None:
    write_record(tmp_path, "track_1_short", "2025-01-02_A", GOOD)
    second = write_record(tmp_path, "track_1_short", "2025-01-05_B", GOOD.replace("2025-01-02", "2025-01-05"))
    with pytest.raises(BadInput, match="field 'number': record 3 is also") as e:
        load_records(tmp_path)
    assert str(e.value).startswith(str(second))
    second.unlink()
    write_record(tmp_path, "track_2_medium", "2025-01-05_B", GOOD.replace("number = 3", "number = 3\nretimes = 3"))
    with pytest.raises(BadInput, match="field 'retimes': no record 3 in track_2_medium"):
        load_records(tmp_path)


def test_the_same_number_on_two_tracks_is_fine(tmp_path: Path) -> None:
    write_record(tmp_path, "track_1_short", "2025-01-02_A", GOOD)
    write_record(tmp_path, "track_2_medium", "2025-01-02_A", GOOD)
    assert [r.track for r in load_records(tmp_path)] == ["track_1_short", "track_2_medium"]


def test_undated_record_and_local_logs(tmp_path: Path) -> None:
    text = GOOD.replace("date = 2025-01-02", 'date = "unknown"').replace("logs = []", 'logs = ["this_pr/run.txt"]')
    path = write_record(tmp_path, "track_2_medium", "undated_A", text)
    (path.parent / "this_pr").mkdir()
    (path.parent / "this_pr" / "run.txt").write_text("step:1/1 val_loss:3.0 train_time:1ms step_avg:1ms\n")
    (record,) = load_records(tmp_path)
    assert record.date is None
    assert local_log_path(record, "this_pr/run.txt", None) == path.parent / "this_pr" / "run.txt"


def test_upstream_links_resolve_under_a_local_copy(tmp_path: Path) -> None:
    link = upstream_url("records/track_1_short/2025-01-02_A/run.txt")
    assert (
        link == "https://github.com/KellerJordan/modded-nanogpt/blob/master/records/track_1_short/2025-01-02_A/run.txt"
    )
    path = write_record(
        tmp_path / "ours", "track_1_short", "2025-01-02_A", GOOD.replace("logs = []", f'logs = ["{link}"]')
    )
    (record,) = load_records(tmp_path / "ours")
    assert local_log_path(record, link, None) is None  # no local copy: the row stays unverified
    mirror = tmp_path / "upstream" / "records"
    with pytest.raises(BadInput, match="field 'logs'") as e:
        local_log_path(record, link, mirror)
    assert str(e.value).startswith(str(path))
    (mirror / "track_1_short" / "2025-01-02_A").mkdir(parents=True)
    (mirror / "track_1_short" / "2025-01-02_A" / "run.txt").write_text("x")
    assert local_log_path(record, link, mirror) == mirror / "track_1_short" / "2025-01-02_A" / "run.txt"


def test_folders_without_record_toml_are_not_records(tmp_path: Path) -> None:
    (tmp_path / "track_1_short" / "2025-01-02_LogsOnly").mkdir(parents=True)
    assert load_records(tmp_path) == []
    with pytest.raises(BadInput, match="does not exist"):
        load_records(tmp_path / "missing")


def test_split_at_track_cuts_a_path_at_its_last_track_folder() -> None:
    path = Path("/up/records/track_1_short/2025-01-02_A/track_1_short/x.txt")
    assert split_at_track(path, "track_1_short") == (
        Path("/up/records/track_1_short/2025-01-02_A"),
        ("x.txt",),
    )
    assert split_at_track(Path("records/track_2_medium"), "track_2_medium") == (Path("records"), ())
    assert split_at_track(Path("records/track_2_medium/A"), "track_1_short") is None


def test_a_records_folder_in_the_working_directory_sets_no_target_unless_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from speedrun.tracks import load_track, track_file

    here = tmp_path / "records" / "track_1_short"
    here.mkdir(parents=True)
    text = (RECORDS / "track_1_short" / "track.toml").read_text(encoding="utf-8")
    (here / "track.toml").write_text(text.replace("target_val_loss = 3.28", "target_val_loss = 9.99"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert track_file("track_1_short") == RECORDS / "track_1_short" / "track.toml"
    assert load_track("small").target_val_loss == 3.28
    assert load_track("small", tmp_path / "records").target_val_loss == 9.99  # --records names it: then it counts


def test_the_judge_needs_neither_torch_nor_the_trainer() -> None:
    """Judging installs without torch: the judge reads our trainer's logs without importing the trainer."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        "from speedrun.judge.judging import judge_path\n"
        f"(j,) = judge_path({str(ROOT / 'records' / 'examples' / '2026-11-30_synthetic-h200')!r})\n"
        "assert j.verdict.value == 'review', j.verdict\n"
        "assert not [m for m in sys.modules if m.startswith('speedrun.trainer')], 'the judge imported the trainer'\n"
    )
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
