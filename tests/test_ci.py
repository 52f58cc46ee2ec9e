"""`speedrun ci`: the changed record folders git reports, the report, the exit codes, and whole pull requests
played out in throw-away git repositories (a base commit, then the pull request's commit)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speedrun import ci
from speedrun.errors import BadInput
from speedrun.judge.runlog import Evidence
from speedrun.judge.verdict import Check, Judgement, Status, Summary

GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITHUB_"))},
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
NEW_RECORD = "records/track_1_short/2026-07-01_FasterTest"


# --- throw-away repositories ---------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=GIT_ENV)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def clone_for_pr(origin: Path, dest: Path) -> Path:
    """A contributor's clone of `origin` on a branch of its own: origin/HEAD -> origin/main, as after a clone."""
    subprocess.run(["git", "clone", "-q", str(origin), str(dest)], check=True, env=GIT_ENV)
    git(dest, "checkout", "-q", "-b", "my-record")
    return dest


def speedrun(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**GIT_ENV, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "speedrun", *args], cwd=repo, capture_output=True, text=True, env=env)


# --- which record folders changed ----------------------------------------------------------------------------


def test_record_folder_of() -> None:
    assert (
        ci.record_folder_of("records/track_1_short/2026-01-01_A/this_pr/x.txt") == "records/track_1_short/2026-01-01_A"
    )
    assert (
        ci.record_folder_of("records/track_2_medium/2025-01-01_B/record.toml") == "records/track_2_medium/2025-01-01_B"
    )
    assert ci.record_folder_of("records/track_1_short/track.toml") is None
    assert ci.record_folder_of("records/examples/tiny/log.txt") is None
    assert ci.record_folder_of("docs/records/track_1_short/a/b.txt") is None


@pytest.fixture
def toy_origin(tmp_path: Path) -> Path:
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    write(origin / "records/track_1_short/track.toml", "name = 'track_1_short'\n")
    write(origin / "records/track_1_short/2026-01-01_Old/record.toml", "number = 1\n")
    write(
        origin / "records/track_2_medium/2025-01-01_Gone/run.txt", "step:1/1 val_loss:3.0 train_time:1ms step_avg:1ms\n"
    )
    write(origin / "README.md", "# readme\n")
    commit_all(origin, "base")
    return origin


def test_find_changes_lists_record_folders_between_the_merge_base_and_head(toy_origin: Path, tmp_path: Path) -> None:
    pr = clone_for_pr(toy_origin, tmp_path / "pr")
    write(pr / NEW_RECORD / "this_pr/run.txt", "log\n")
    write(pr / "records/track_1_short/2026-01-01_Old/record.toml", "number = 2\n")
    shutil.rmtree(pr / "records/track_2_medium/2025-01-01_Gone")
    write(pr / "records/track_1_short/track.toml", "name = 'track_1_short'\ntarget_val_loss = 9.9\n")
    write(pr / "docs/notes.md", "notes\n")
    commit_all(pr, "the pull request")
    # The default branch moves on after the branch point: its new record is not this pull request's.
    write(toy_origin / "records/track_1_short/2026-08-01_Other/record.toml", "number = 3\n")
    commit_all(toy_origin, "someone else's record")
    git(pr, "fetch", "-q", "origin")

    changes = ci.find_changes(pr)

    assert changes.base == "origin/main"
    assert changes.record_folders == ("records/track_1_short/2026-01-01_Old", NEW_RECORD)
    assert changes.removed_folders == ("records/track_2_medium/2025-01-01_Gone",)
    assert changes.track_files == ("records/track_1_short/track.toml",)
    assert changes.other_paths == ("docs/notes.md",)
    assert changes.head == git(pr, "rev-parse", "HEAD").strip()
    assert changes.merge_base == git(toy_origin, "rev-parse", "HEAD~1").strip()


def test_find_changes_with_an_explicit_base_and_github_base_ref(
    toy_origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pr = clone_for_pr(toy_origin, tmp_path / "pr")
    write(pr / NEW_RECORD / "run.txt", "log\n")
    commit_all(pr, "one record")
    assert ci.find_changes(pr, "HEAD").record_folders == ()
    assert ci.find_changes(pr, "HEAD~1").record_folders == (NEW_RECORD,)
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    assert ci.find_changes(pr).base == "origin/main"


def test_find_changes_without_origin_uses_local_main(toy_origin: Path) -> None:
    git(toy_origin, "checkout", "-q", "-b", "feature")
    write(toy_origin / NEW_RECORD / "run.txt", "log\n")
    commit_all(toy_origin, "one record")
    changes = ci.find_changes(toy_origin)
    assert (changes.base, changes.record_folders) == ("main", (NEW_RECORD,))


@pytest.mark.parametrize(
    ("base", "message"),
    [("no-such-branch", "unknown base 'no-such-branch'"), ("--output=/tmp/x", "unknown base '--output=/tmp/x'")],
)
def test_a_bad_base_is_bad_input(toy_origin: Path, base: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        ci.find_changes(toy_origin, base)


def test_outside_a_repository_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not inside a git repository"):
        ci.repo_root(tmp_path)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path: Path, toy_origin: Path) -> None:
    proc = speedrun(tmp_path, "ci")
    assert proc.returncode == 2
    assert "not inside a git repository" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = speedrun(toy_origin, "ci", "--base", "nowhere")
    assert proc.returncode == 2 and "unknown base 'nowhere'" in proc.stderr


# --- the report and the exit code ----------------------------------------------------------------------------


def _judgement(root: Path, folder: str, verdict: str, baseline: Judgement | None = None) -> Judgement:
    log = root / folder / "run-1.txt"
    checks = [Check("hardware", Status.WARN, "found 8x NVIDIA A100", (Evidence(log, 12),))]
    if verdict == "fail":
        checks.append(Check("loss", Status.FAIL, "mean 3.2901 is not below 3.28 (p = 1)", (Evidence(log, 2117),)))
    else:
        checks.append(Check("loss", Status.PASS, "mean 3.2760 < 3.28, p = 1e-06", (Evidence(log, 2117),)))
    summary = Summary(5, 3.2901 if verdict == "fail" else 3.276, 0.0009, 0.9 if verdict == "fail" else 1e-6, 75.2, 75.1)
    return Judgement(root / folder, "track_1_short", "path", (), summary, tuple(checks), baseline)


def _report(root: Path, records: tuple[ci.RecordResult, ...], leaderboard: ci.LeaderboardResult) -> ci.CiReport:
    changes = ci.Changes("origin/main", "a" * 40, "b" * 40, tuple(r.folder for r in records), (), (), ())
    return ci.CiReport(root, changes, records, leaderboard)


def test_report_names_verdict_figures_and_failing_checks(tmp_path: Path) -> None:
    base = _judgement(tmp_path, f"{NEW_RECORD}/baseline", "pass")
    failing = ci.RecordResult(NEW_RECORD, (_judgement(tmp_path, f"{NEW_RECORD}/this_pr", "fail", base),))
    report = _report(tmp_path, (failing,), ci.LeaderboardResult(True))
    markdown = ci.to_markdown(report)
    print(markdown)
    assert report.exit_code == 1 and markdown.startswith("## speedrun ci: fail")
    assert f"### {NEW_RECORD}: fail" in markdown
    assert f"`{NEW_RECORD}/baseline (baseline)`" in markdown and f"`{NEW_RECORD}/this_pr`" in markdown
    assert "3.2901 ± 0.0009" in markdown and "75.20 s" in markdown
    assert f"- **loss** (`{NEW_RECORD}/this_pr`): mean 3.2901 is not below 3.28 (p = 1) — " in markdown
    assert f"`{NEW_RECORD}/this_pr/run-1.txt:2117`" in markdown  # evidence, relative to the repository
    assert "Warnings:" in markdown and "found 8x NVIDIA A100" in markdown
    assert "The README tables and chart match `records/`." in markdown


def test_exit_codes() -> None:
    root = Path("/repo")
    passing = ci.RecordResult(NEW_RECORD, (_judgement(root, NEW_RECORD, "pass"),))
    failing = ci.RecordResult(NEW_RECORD, (_judgement(root, NEW_RECORD, "fail"),))
    bad = ci.RecordResult(NEW_RECORD, bad_input=f"{NEW_RECORD}/run.txt: no final val loss")
    fresh, stale = ci.LeaderboardResult(True), ci.LeaderboardResult(False, "-| 1 | old |\n+| 1 | new |")
    unreadable = ci.LeaderboardResult(False, bad_input="records/x/record.toml: missing field 'time'")
    assert _report(root, (), fresh).exit_code == 0
    assert _report(root, (passing, ci.RecordResult(NEW_RECORD)), fresh).exit_code == 0  # metadata-only folder
    assert _report(root, (passing,), stale).exit_code == 1
    assert _report(root, (failing, passing), fresh).exit_code == 1
    assert _report(root, (failing, bad), stale).exit_code == 2
    assert _report(root, (passing,), unreadable).exit_code == 2
    assert _report(root, (failing, bad), fresh).problems == [bad.bad_input]


def test_report_of_no_record_change_is_one_line_note() -> None:
    changes = ci.Changes("origin/main", "a" * 40, "b" * 40, (), (), (), ("docs/x.md", "speedrun/cli.py"))
    markdown = ci.to_markdown(ci.CiReport(Path("/repo"), changes, (), ci.LeaderboardResult(True)))
    assert "No record folder changed (2 other paths): nothing to judge." in markdown
    assert markdown.startswith("## speedrun ci: pass")


def test_stale_readme_diff_is_shown_and_cut() -> None:
    diff = "\n".join(f"+| {i} | row |" for i in range(200))
    changes = ci.Changes("main", "a" * 40, "b" * 40, (), (), (), ())
    markdown = ci.to_markdown(ci.CiReport(Path("/repo"), changes, (), ci.LeaderboardResult(False, diff)))
    assert "run `speedrun leaderboard` and commit the result" in markdown
    assert "+| 79 | row |" in markdown and "+| 80 | row |" not in markdown and "(120 more lines)" in markdown


def test_json_report_is_stable(tmp_path: Path) -> None:
    passing = ci.RecordResult(NEW_RECORD, (_judgement(tmp_path, NEW_RECORD, "pass"),), judge_json=[{"verdict": "pass"}])
    data = json.loads(ci.dumps(_report(tmp_path, (passing,), ci.LeaderboardResult(True))))
    assert data["verdict"] == "pass" and data["exit_code"] == 0
    assert data["records"] == [
        {"folder": NEW_RECORD, "status": "pass", "bad_input": None, "judgements": [{"verdict": "pass"}]}
    ]
    assert data["leaderboard"] == {"up_to_date": True, "diff": "", "bad_input": None}


def test_summary_is_appended_never_overwritten(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    ci.append_summary(summary, "## speedrun ci: pass")
    assert summary.read_text(encoding="utf-8") == "# earlier step\n## speedrun ci: pass\n"
    with pytest.raises(BadInput, match="cannot append the summary"):
        ci.append_summary(tmp_path / "missing" / "summary.md", "x")
