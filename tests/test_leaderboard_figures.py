"""The judge's figures kept in each record.toml: written as one generated block, shown without the logs,
re-checked with them, and a changed log reported."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from speedrun.errors import BadInput
from speedrun.judge.runlog import RunLog, StepLine
from speedrun.judge.verdict import Check, Judgement, Status, Summary
from speedrun.leaderboard.generate import generate, write
from speedrun.store import RECORD_FILE, VERIFIED_BEGIN, VERIFIED_END, load_records, read_record
from tests.conftest import ROOT
from tests.test_leaderboard import MARKED_README, add_record, nb, speedrun

UPSTREAM = "https://github.com/KellerJordan/modded-nanogpt/blob/master/records/track_1_short/"
MAINTAINERS_TEXT = """\
# A comment the maintainer wrote, kept as is.
description = "Faster"   # fields in the maintainer's own order
number = 3
time = "3.5 minutes"
date = 2025-04-01
contributors = ["@someone"]
logs = [{logs}]
pull_requests = []
"""


def judging_by_bytes(mean: float = 3.2781) -> object:
    """A stand-in for the judge: one judgement of the linked folder's *.txt runs, each log's real sha256."""

    def judge(path: Path, *, track: str, records_dir: Path | None) -> list[Judgement]:
        folder = path if path.is_dir() else path.parent
        runs = tuple(
            RunLog(
                path=log,
                format="speedrun",
                sha256=hashlib.sha256(log.read_bytes()).hexdigest(),
                steps=(StepLine(step=10, total_steps=10, line=5, val_loss=mean, train_time_ms=210_000.0),),
            )
            for log in sorted(folder.rglob("*.txt"))
        )
        summary = Summary(len(runs), mean, 0.001, 0.004, 210.0, 210.0)
        return [Judgement(folder, track, "--track", runs, summary, (Check("speed", Status.PASS, "ok"),))]

    return judge


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """A local copy of an upstream records/ folder holding one record's two logs."""
    folder = tmp_path / "upstream" / "records" / "track_1_short" / "2025-04-01_Faster"
    folder.mkdir(parents=True)
    for name in ("a.txt", "b.txt"):
        (folder / name).write_text(f"run {name}\n")
    return tmp_path / "upstream" / "records"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "README.md").write_bytes(MARKED_README.encode())
    add_record(tmp_path / "records", "2025-01-02_First", 1, "10.5 minutes")
    add_record(tmp_path / "records", "2025-01-05_Medium", 1, "40 minutes", track="track_2_medium")
    path = tmp_path / "records" / "track_1_short" / "2025-04-01_Faster" / RECORD_FILE
    path.parent.mkdir(parents=True)
    path.write_text(MAINTAINERS_TEXT.format(logs=f'"{UPSTREAM}2025-04-01_Faster/a.txt"'), encoding="utf-8")
    return tmp_path


def faster(project: Path) -> Path:
    return project / "records" / "track_1_short" / "2025-04-01_Faster" / RECORD_FILE


def test_the_figures_go_into_one_generated_block_and_nothing_else_changes(project: Path, mirror: Path) -> None:
    records, readme = project / "records", project / "README.md"
    before = faster(project).read_text(encoding="utf-8")
    board = generate(records, readme, logs_dir=mirror, judge=judging_by_bytes())
    assert faster(project) in board.stale
    write(board)
    after = faster(project).read_text(encoding="utf-8")
    assert after.startswith(before)  # the maintainer's comments, fields and their order, byte for byte
    block = after[len(before) :]
    assert block.startswith(f"\n{VERIFIED_BEGIN}\n[verified]\nn = 2\nmean_val_loss = 3.2781\np_value = 0.004\n")
    assert block.endswith(f"{VERIFIED_END}\n")
    digest = hashlib.sha256(b"run a.txt\n").hexdigest()
    assert f'"a.txt" = "{digest}"' in block

    (judged,) = [figures for record, figures in board.figures.items() if record.path == faster(project)]
    assert read_record(faster(project), "track_1_short").verified == judged  # reads back as the same figures
    assert "| ✓ n=2, mean 3.2781, p=0.004; time: log |" in readme.read_text(encoding="utf-8").replace("\u00a0", " ")

    again = generate(records, readme, logs_dir=mirror, judge=judging_by_bytes())
    assert again.stale == [] and again.log_changes == ()  # idempotent

    moved = generate(records, readme, logs_dir=mirror, judge=judging_by_bytes(mean=3.2790))
    write(moved)
    text = faster(project).read_text(encoding="utf-8")
    assert text.startswith(before) and text.count(VERIFIED_BEGIN) == 1 and "mean_val_loss = 3.279\n" in text
    assert moved.log_changes == (f"{faster(project)}: the judge's figures changed: mean_val_loss 3.2781 -> 3.279",)


def test_without_the_logs_the_recorded_figures_show_and_check(project: Path, mirror: Path) -> None:
    records, readme = project / "records", project / "README.md"
    write(generate(records, readme, logs_dir=mirror, judge=judging_by_bytes()))
    shown = readme.read_bytes().decode()

    def no_judge(path: Path, *, track: str, records_dir: Path | None) -> list[Judgement]:
        raise AssertionError("nothing to judge without the logs")

    clean = generate(records, readme, judge=no_judge)  # a clean checkout: no --logs
    assert clean.stale == [] and clean.readme_new == shown and clean.verifications == {}
    proc = speedrun("leaderboard", "--check", "--records", records, "--readme", readme)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 records: 1 with the judge's figures, 0 of them read from their logs now" in " ".join(proc.stdout.split())

    # A hand edit of the recorded figures shows in the README that --check compares with.
    path = faster(project)
    path.write_text(path.read_text(encoding="utf-8").replace("n = 2\n", "n = 12\n"), encoding="utf-8")
    proc = speedrun("leaderboard", "--check", "--records", records, "--readme", readme)
    assert proc.returncode == 1 and "+| 3 |" in proc.stdout and "n=12" in proc.stdout


def test_a_log_whose_bytes_changed_is_reported(project: Path, mirror: Path) -> None:
    records, readme = project / "records", project / "README.md"
    write(generate(records, readme, logs_dir=mirror, judge=judging_by_bytes()))
    (mirror / "track_1_short" / "2025-04-01_Faster" / "b.txt").write_text("run b.txt, edited\n")
    board = generate(records, readme, logs_dir=mirror, judge=judging_by_bytes())
    (change,) = board.log_changes
    assert change.startswith(f"{faster(project)}: log b.txt changed since it was verified (sha256 ")
    assert faster(project) in board.stale and readme not in board.stale  # same figures, other bytes


def test_the_real_judge_records_and_rechecks_a_record_with_its_own_logs(tmp_path: Path) -> None:
    """End to end through the CLI: our trainer's example logs as a record's own logs."""
    (tmp_path / "README.md").write_bytes(MARKED_README.encode())
    folder = tmp_path / "records" / "track_1_short" / "2026-11-22_Example"
    shutil.copytree(ROOT / "records" / "examples" / "2026-11-30_synthetic-h200", folder)
    logs = sorted(p.name for p in folder.glob("*.txt"))
    path = add_record(tmp_path / "records", "2026-11-22_Example", 1, "2.5 minutes", logs=())
    path.write_text(path.read_text().replace("logs = []", f'logs = ["{logs[0]}"]'), encoding="utf-8")
    args = ("leaderboard", "--records", tmp_path / "records", "--readme", tmp_path / "README.md")
    assert speedrun(*args).returncode == 0
    record = read_record(path, "track_1_short")
    assert record.verified is not None and record.verified.n == 2
    assert dict(record.verified.sha256) == {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in logs
    }
    assert speedrun(*args, "--check").returncode == 0

    with open(folder / logs[1], "a", encoding="utf-8") as f:
        f.write("\n")  # the same runs to the judge, other bytes
    proc = speedrun(*args, "--check")
    assert proc.returncode == 1
    assert f"log {logs[1]} changed since it was verified" in " ".join(proc.stderr.split())


def test_the_commit_of_the_logs_is_recorded_when_known(project: Path, mirror: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(mirror)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "logs"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    board = generate(project / "records", project / "README.md", logs_dir=mirror, judge=judging_by_bytes())
    (figures,) = [f for r, f in board.figures.items() if r.number == 3]
    assert figures.upstream_commit == head

    pinned = "0123456789abcdef0123456789abcdef01234567"
    path = faster(project)
    path.write_text(path.read_text().replace("/blob/master/", f"/blob/{pinned}/"), encoding="utf-8")
    board = generate(project / "records", project / "README.md", logs_dir=mirror, judge=judging_by_bytes())
    (figures,) = [f for r, f in board.figures.items() if r.number == 3]
    assert figures.upstream_commit == pinned  # a link that pins a commit says which logs it means


BAD_BLOCKS = {
    "sha256 not hex": ('"a.txt" = "', '"a.txt" = "zz', "sha256 of 'a.txt'"),
    "unknown figure": ("n = 2\n", "n = 2\nspeedup = 2\n", "unknown field 'speedup'"),
    "no runs": ("n = 2\n", "n = 0\n", "field 'verified.n'"),
    "not a number": ("mean_val_loss = 3.2781", 'mean_val_loss = "low"', "field 'verified.mean_val_loss'"),
}


@pytest.mark.parametrize("case", BAD_BLOCKS, ids=list(BAD_BLOCKS))
def test_a_malformed_block_names_the_file_and_field(project: Path, mirror: Path, case: str) -> None:
    write(generate(project / "records", project / "README.md", logs_dir=mirror, judge=judging_by_bytes()))
    old, new, problem = BAD_BLOCKS[case]
    path = faster(project)
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    with pytest.raises(BadInput, match=re.escape(problem)) as raised:
        load_records(project / "records")
    assert raised.value.path == str(path)


def test_a_hand_written_verified_table_or_a_doubled_block_is_refused(project: Path, mirror: Path) -> None:
    path = faster(project)
    original = path.read_text(encoding="utf-8")
    path.write_text(
        original + '\n[verified]\nn = 2\nmean_val_loss = 3.2\nverdict = "pass"\ntime_matches = true\n'
        'judge_version = "x"\n[verified.sha256]\n"a.txt" = "' + "0" * 64 + '"\n',
        encoding="utf-8",
    )
    with pytest.raises(BadInput, match="outside the block"):
        generate(project / "records", project / "README.md", logs_dir=mirror, judge=judging_by_bytes())
    write_once = original + f"\n{VERIFIED_BEGIN}\n{VERIFIED_END}\n{VERIFIED_BEGIN}\n{VERIFIED_END}\n"
    path.write_text(write_once, encoding="utf-8")
    with pytest.raises(BadInput, match="once"):
        generate(project / "records", project / "README.md", logs_dir=mirror, judge=judging_by_bytes())
    assert path.read_text(encoding="utf-8") == write_once  # nothing written


def test_the_project_readme_shows_the_recorded_figures_and_folds_older_rows() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    records = load_records(ROOT / "records")
    for record in records:
        row = next(
            line
            for line in readme.splitlines()
            if line.startswith(f"| {record.number} | {nb(record.time_text).replace('*', chr(92) + '*')} |")
        )
        if record.verified is None:
            assert row.endswith("| unverified |"), row
            continue
        f = record.verified
        p = "p n/a" if f.p_value is None else "p<0.0001" if f.p_value < 1e-4 else f"p={f.p_value:.2g}"
        shown = row.replace("\u00a0", " ").replace("| ✓ ", "| ").replace("| ⚠ ", "| ")
        assert f"| n={f.n}, mean {f.mean_val_loss:.4f}, {p}; " in shown, row
        date = row.split(" | ")[3]
        assert re.fullmatch(r"\d{4}\u2011\d\d\u2011\d\d|-", date), date  # a date never breaks at its hyphens
    assert sum(r.verified is not None for r in records) == 92  # every row whose logs are in the upstream archive
    for track in ("track_1_short", "track_2_medium"):
        block = readme[readme.index(f"<!-- leaderboard:{track} -->") : readme.index(f"<!-- /leaderboard:{track} -->")]
        older, recent = block.split("</details>")
        assert "<details>\n<summary>Records 1 to " in older
        assert len([line for line in recent.splitlines() if re.match(r"\| \d+ \|", line)]) == 10
