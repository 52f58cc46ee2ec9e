"""Discovery in a folder a submission controls: links are never followed, nesting is bounded, and only files
with the structure of a run log count (tests/test_parse.py has the ordinary cases)."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import pytest

from speedrun.errors import BadInput
from speedrun.judge import discover
from speedrun.judge.discover import find_run_logs, holds_run_logs, split_groups
from speedrun.judge.judging import judge_path
from speedrun.judge.parse import looks_like_run_log
from tests.test_judge_cli import GOOD, write_runs
from tests.test_parse import PLAIN_LOG, write


def refused(path: Path) -> str:
    with pytest.raises(BadInput) as caught:
        find_run_logs(path)
    return str(caught.value)


def test_a_link_to_a_file_outside_is_reported_not_read(tmp_path: Path) -> None:
    write(tmp_path, PLAIN_LOG, "record/run.txt")
    (tmp_path / "record" / "passwd.txt").symlink_to("/etc/passwd")
    message = refused(tmp_path / "record")
    assert message.startswith(f"{tmp_path / 'record' / 'passwd.txt'}: a symbolic link")
    assert holds_run_logs(tmp_path / "record")  # judging then reports the link


def test_a_link_to_an_outside_log_or_folder_is_reported(tmp_path: Path) -> None:
    outside = write(tmp_path, PLAIN_LOG, "outside/run.txt")
    write(tmp_path, PLAIN_LOG, "record/run.txt")
    (tmp_path / "record" / "borrowed.txt").symlink_to(outside)
    assert "borrowed.txt: a symbolic link" in refused(tmp_path / "record")
    (tmp_path / "record" / "borrowed.txt").unlink()
    (tmp_path / "record" / "baseline").symlink_to(outside.parent)
    assert "baseline: a symbolic link" in refused(tmp_path / "record")
    assert "a symbolic link" in refused(tmp_path / "record" / "baseline")  # named directly, too


def test_a_sibling_baseline_that_is_a_link_is_not_used(tmp_path: Path) -> None:
    write_runs(tmp_path / "record" / "this_pr", GOOD)
    write_runs(tmp_path / "elsewhere" / "baseline", GOOD, times=[200_000] * len(GOOD))
    (tmp_path / "record" / "baseline").symlink_to(tmp_path / "elsewhere" / "baseline")
    (judgement,) = judge_path(tmp_path / "record" / "this_pr", track="small")
    assert judgement.baseline is None


def test_hidden_entries_are_skipped_links_included(tmp_path: Path) -> None:
    write(tmp_path, PLAIN_LOG, "record/run.txt")
    write(tmp_path, PLAIN_LOG, "record/.git/objects/x.txt")
    (tmp_path / "record" / ".link.txt").symlink_to("/etc/passwd")
    assert find_run_logs(tmp_path / "record") == [tmp_path / "record" / "run.txt"]


def test_nesting_is_bounded_and_walked_without_recursion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / "record"
    for _ in range(discover.MAX_FOLDER_DEPTH):
        deep = deep / "d"
    write(deep, PLAIN_LOG, "run.txt")
    assert len(find_run_logs(tmp_path / "record")) == 1  # at the bound
    write(deep / "d", PLAIN_LOG, "run.txt")
    assert "nested more than" in refused(tmp_path / "record")
    for _ in range(60):
        deep = deep / "d"
    write(deep, PLAIN_LOG, "run.txt")
    monkeypatch.setattr(discover, "MAX_FOLDER_DEPTH", 10_000)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(traceback.extract_stack()) + 40)  # below the depth: a recursive walk would fail
    try:
        assert len(find_run_logs(tmp_path / "record")) == 3
    finally:
        sys.setrecursionlimit(limit)


def test_a_notes_file_mentioning_a_step_is_not_a_run_log(tmp_path: Path) -> None:
    notes = write(tmp_path, "We stopped the sweep at\nstep:500 because the loss was flat.\n", "record/notes.txt")
    assert not looks_like_run_log(notes)
    run = write(tmp_path, PLAIN_LOG, "record/run.txt")
    assert split_groups(tmp_path / "record") == {".": [run]}


@pytest.mark.parametrize(
    "line",
    [
        "step:10/500 val_loss:4.1 train_time:1ms step_avg:1.00ms",
        "step:10 train_loss:4.1",
        "step:10/500 lr:0.1 train_time:5ms",
        "s:250 tel:6.3097",
    ],
)
def test_real_step_lines_make_a_run_log(tmp_path: Path, line: str) -> None:
    assert looks_like_run_log(write(tmp_path, f"some output\n{line}\n"))


def test_a_step_line_across_two_sniffed_chunks_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "x" * 1000 + "\nstep:10/500 val_loss:4.1 train_time:1ms step_avg:1.00ms\n" + "y\n" * 3000)
    monkeypatch.setattr("speedrun.judge.parse.SNIFF_CHUNK_BYTES", 1010)
    assert looks_like_run_log(path)
