"""`speedrun ci`: the changed record folders git reports, the report, the exit codes, and whole pull requests
played out in throw-away git repositories (a base commit, then the pull request's commit)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from speedrun.ci import check as ci
from speedrun.errors import BadInput
from speedrun.judge.runlog import Evidence
from speedrun.judge.verdict import Check, Judgement, Status, Summary
from tests.conftest import ROOT

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


def test_find_changes_on_githubs_merge_commit(toy_origin: Path, tmp_path: Path) -> None:
    """On pull_request, CI checks out a merge of the PR into the target branch; --base is the target's commit."""
    pr = clone_for_pr(toy_origin, tmp_path / "pr")
    write(pr / NEW_RECORD / "run.txt", "log\n")
    commit_all(pr, "one record")
    write(toy_origin / "records/track_1_short/2026-08-01_Other/record.toml", "number = 3\n")
    commit_all(toy_origin, "someone else's record")
    git(pr, "fetch", "-q", "origin")
    base_sha = git(pr, "rev-parse", "origin/main").strip()
    git(pr, "checkout", "-q", "--detach", base_sha)
    git(pr, "merge", "-q", "--no-ff", "-m", "Merge my-record into main", "my-record")
    assert ci.find_changes(pr, base_sha).record_folders == (NEW_RECORD,)


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
    """A judgement whose checks give `verdict`: fail (the loss), review (the hardware warns) or pass."""
    log = root / folder / "run-1.txt"
    hardware = Status.PASS if verdict == "pass" else Status.WARN
    checks = [Check("hardware", hardware, "found 8x NVIDIA A100", (Evidence(log, 12),), rule_id="SR008")]
    if verdict == "fail":
        failed = Check("loss", Status.FAIL, "mean 3.2901 is not below 3.28 (p = 1)", (Evidence(log, 2117),))
        checks.append(replace(failed, rule_id="SR003"))
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
    assert f"`{NEW_RECORD}/baseline` (baseline)" in markdown and f"`{NEW_RECORD}/this_pr`" in markdown
    assert "3.2901 ± 0.0009" in markdown and "75.20 s" in markdown
    assert f"- **loss** (SR003, `{NEW_RECORD}/this_pr`): mean 3.2901 is not below 3.28 (p = 1) — " in markdown
    assert f"`{NEW_RECORD}/this_pr/run-1.txt:2117`" in markdown  # evidence, relative to the repository
    assert "Needs review:" in markdown and "found 8x NVIDIA A100" in markdown
    assert "Speed:" not in markdown  # only a passing speed check is shown beside the figures
    assert "The README tables and chart match `records/`." in markdown


def test_exit_codes() -> None:
    root = Path("/repo")
    passing = ci.RecordResult(NEW_RECORD, (_judgement(root, NEW_RECORD, "pass"),))
    failing = ci.RecordResult(NEW_RECORD, (_judgement(root, NEW_RECORD, "fail"),))
    review = ci.RecordResult(NEW_RECORD, (_judgement(root, NEW_RECORD, "review"),))
    bad = ci.RecordResult(NEW_RECORD, bad_input=f"{NEW_RECORD}/run.txt: no final val loss")
    fresh, stale = ci.LeaderboardResult(True), ci.LeaderboardResult(False, "-| 1 | old |\n+| 1 | new |")
    unreadable = ci.LeaderboardResult(False, bad_input="records/x/record.toml: missing field 'time'")
    assert _report(root, (), fresh).exit_code == 0
    assert _report(root, (passing, ci.RecordResult(NEW_RECORD)), fresh).exit_code == 0  # metadata-only folder
    assert _report(root, (passing,), stale).exit_code == 1
    assert _report(root, (failing, passing), fresh).exit_code == 1
    assert _report(root, (review, passing), fresh).exit_code == 4  # a review never passes on its own
    assert _report(root, (review, failing), fresh).exit_code == 1
    assert _report(root, (review,), fresh).verdict is ci.Outcome.REVIEW
    assert _report(root, (failing, bad), stale).exit_code == 2
    assert _report(root, (passing,), unreadable).exit_code == 2
    assert _report(root, (failing, bad), fresh).problems == [bad.bad_input]


def test_report_lists_folders_without_logs_once() -> None:
    folders = tuple(f"records/track_1_short/2024-01-{d:02d}_Old" for d in range(1, 13))
    changes = ci.Changes("main", "a" * 40, "b" * 40, folders, ("records/track_2_medium/2025-01-01_Gone",), (), ())
    records = tuple(ci.RecordResult(f) for f in folders)
    markdown = ci.to_markdown(ci.CiReport(Path("/repo"), changes, records, ci.LeaderboardResult(True)))
    assert markdown.startswith("## speedrun ci: pass")
    assert markdown.count("\n### ") == 2  # one section for all of them, then the leaderboard
    assert "<details><summary>13 folders</summary>" in markdown
    assert "- `records/track_1_short/2024-01-12_Old`" in markdown
    assert "- `records/track_2_medium/2025-01-01_Gone` (removed)" in markdown


def test_report_of_no_record_change_is_one_line_note() -> None:
    changes = ci.Changes("origin/main", "a" * 40, "b" * 40, (), (), (), ("docs/x.md", "speedrun/cli.py"))
    markdown = ci.to_markdown(ci.CiReport(Path("/repo"), changes, (), ci.LeaderboardResult(True)))
    assert "No record folder changed (2 other paths): nothing to judge." in markdown
    assert markdown.startswith("## speedrun ci: pass")


def test_stale_readme_diff_is_shown() -> None:
    changes = ci.Changes("main", "a" * 40, "b" * 40, (), (), (), ())
    markdown = ci.to_markdown(
        ci.CiReport(Path("/repo"), changes, (), ci.LeaderboardResult(False, "-| 1 | a |\n+| 1 | b |"))
    )
    assert markdown.startswith("## speedrun ci: fail")
    assert "run `speedrun leaderboard` and commit the result" in markdown
    assert "```diff\n-| 1 | a |\n+| 1 | b |\n```" in markdown


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


# --- whole pull requests: a base commit with the project's records and README, then the pull request ---------

GPU_ROW = "|   {i}  NVIDIA H100 80GB HBM3          On  |   00000000:{bus:02X}:00.0 Off |                    0 |"
TRAIN_SOURCE = """import torch

from speedrun.trainer.data import distributed_loader
from speedrun.trainer.model import GPT


def build(config):
    model = GPT(config)
    return torch.compile(model, dynamic=False)
"""
BANNED_FLAG = "torch._inductor.config.coordinate_descent_tuning = True\n"
GOOD_LOSSES = (3.2752, 3.2768, 3.2761, 3.2770, 3.2757)
MISSED_LOSSES = (3.2893, 3.2908, 3.2899, 3.2911, 3.2896)


def trainer_log(
    seed: int, final_loss: float, *, extra_source: str = "", steps: int = 1695, step_ms: float = 45.0
) -> str:
    """A run log in our trainer's format: its sources, the environment, config, the FineWeb shards it read and
    seed, then the step lines. 1695 steps: the small recipe's."""
    data_py = ROOT / "speedrun" / "trainer" / "data.py"
    data_source = (
        data_py.read_text(encoding="utf-8") if data_py.is_file() else "def load_shard(path):\n    return path\n"
    )
    lines = [
        f"# >>> speedrun/trainer/train.py\n{TRAIN_SOURCE}{extra_source}",
        f"# >>> speedrun/trainer/data.py\n{data_source}",
    ]
    lines = ["".join(lines).rstrip("\n"), "=" * 100]
    lines += [
        "Running Python 3.12.7 (main, Mar  2 2026, 17:32:53) [GCC 13.2.0]",
        "Running PyTorch 2.10.0+cu128 compiled for CUDA 12.8",
        "Running Triton version 3.6.0",
        "+-----------------------------------------------------------------------------------------+",
        "| NVIDIA-SMI 550.144.03             Driver Version: 550.144.03     CUDA Version: 12.4     |",
        "|=========================================+========================+======================|",
    ]
    lines += [GPU_ROW.format(i=i, bus=10 + i) for i in range(8)]
    lines += ["+-----------------------------------------------------------------------------------------+", "=" * 100]
    config = {"track": "track_1_short", "preset": None, "num_iterations": steps, "val_tokens": 10_485_760}
    lines += [f"config: {json.dumps(config)}"]
    train = [f"fineweb_train_{i:06d}.bin" for i in range(1, 9)]
    data = {
        "version": 1,
        "synthetic": None,
        "train": [{"file": name, "tokens": 100_000_000, "synthetic": None} for name in train],
        "val": [{"file": "fineweb_val_000000.bin", "tokens": 100_000_000, "synthetic": None}],
    }
    lines += [f"train_files: {','.join(train)}", "val_files: fineweb_val_000000.bin", f"data: {json.dumps(data)}"]
    lines += [f"seed: {seed}"]
    time_ms = 0.0
    for step in range(steps + 1):
        if step:
            time_ms += step_ms + ((step * 7 + seed * 13) % 11 - 5) * 0.1  # a little jitter, different per seed
        avg = time_ms / max(step, 1)
        if step % 250 == 0 or step == steps:
            # A smooth descent to the final loss; the seed shifts every point so trajectories differ.
            loss = final_loss + (10.83 - final_loss) * (1 - step / steps) ** 3 + (seed % 7) * 1e-3 * (step < steps)
            lines.append(f"step:{step}/{steps} val_loss:{loss:.4f} train_time:{time_ms:.0f}ms step_avg:{avg:.2f}ms")
        if step:
            lines.append(f"step:{step}/{steps} train_time:{time_ms:.0f}ms step_avg:{avg:.2f}ms")
    lines.append("peak memory allocated: 30950 MiB reserved: 47202 MiB")
    return "\n".join(lines) + "\n"


def add_record(repo: Path, losses: tuple[float, ...], *, extra_source: str = "") -> Path:
    """A new small-track record folder with one log per loss and its record.toml."""
    folder = repo / NEW_RECORD
    names = []
    for i, loss in enumerate(losses):
        name = f"run-{i + 1}.txt"
        write(folder / name, trainer_log(1000 + i, loss, extra_source=extra_source))
        names.append(name)
    toml = [
        "number = 85",
        'time = "1.250 minutes"',
        "date = 2026-07-01",
        'description = "A faster test record"',
        'contributors = ["@tester"]',
        f"logs = {json.dumps(names)}",
        "pull_requests = []",
    ]
    write(folder / "record.toml", "\n".join(toml) + "\n")
    return folder


def regenerate_leaderboard(repo: Path) -> None:
    proc = speedrun(repo, "leaderboard")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def project_origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default branch of a records repository: the project's records/, README and chart, up to date."""
    origin = tmp_path_factory.mktemp("project") / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    shutil.copytree(ROOT / "records", origin / "records")
    shutil.copy(ROOT / "README.md", origin / "README.md")
    if (ROOT / "docs").is_dir():
        shutil.copytree(ROOT / "docs", origin / "docs")
    regenerate_leaderboard(origin)
    commit_all(origin, "the records so far")
    return origin


def open_pr(origin: Path, tmp_path: Path, change: Callable[[Path], object], *, regenerate: bool = True) -> Path:
    pr = clone_for_pr(origin, tmp_path / "pr")
    change(pr)
    if regenerate:
        regenerate_leaderboard(pr)
    commit_all(pr, "the pull request")
    return pr


def run_ci_in(repo: Path, tmp_path: Path) -> tuple[int, str, str]:
    """Run `speedrun ci` as CI does; return (exit code, the step-summary report, stderr)."""
    summary = tmp_path / "step_summary.md"
    proc = speedrun(repo, "ci", "--summary", str(summary))
    report = summary.read_text(encoding="utf-8") if summary.exists() else ""
    assert proc.stdout == report, "stdout and the step summary carry the same report"
    assert "Traceback" not in proc.stderr
    return proc.returncode, report, proc.stderr


def test_pr_with_a_good_record_passes(project_origin: Path, tmp_path: Path) -> None:
    pr = open_pr(project_origin, tmp_path, lambda repo: add_record(repo, GOOD_LOSSES))
    code, report, stderr = run_ci_in(pr, tmp_path)
    assert code == 0, report + stderr
    assert report.startswith("## speedrun ci: pass")
    assert f"### {NEW_RECORD}: pass" in report
    assert "The README tables and chart match `records/`." in report
    assert f"- **speed** (SR005, `{NEW_RECORD}`): " in report.split("Speed:")[1]  # against the current record


def test_pr_whose_runs_miss_the_target_fails(project_origin: Path, tmp_path: Path) -> None:
    pr = open_pr(project_origin, tmp_path, lambda repo: add_record(repo, MISSED_LOSSES))
    code, report, stderr = run_ci_in(pr, tmp_path)
    assert code == 1, report + stderr
    assert f"### {NEW_RECORD}: fail" in report
    failing = report.split("Failing checks:")[1]
    assert "3.28" in failing and "**loss**" in failing


def test_pr_with_a_banned_compile_flag_fails(project_origin: Path, tmp_path: Path) -> None:
    pr = open_pr(project_origin, tmp_path, lambda repo: add_record(repo, GOOD_LOSSES, extra_source=BANNED_FLAG))
    code, report, stderr = run_ci_in(pr, tmp_path)
    assert code == 1, report + stderr
    failing = report.split("Failing checks:")[1]
    assert "**compile flags**" in failing and "coordinate_descent_tuning" in failing
    assert f"`{NEW_RECORD}/run-1.txt:" in failing and str(pr) not in report  # paths relative to the repository


def test_pr_with_hostile_code_never_runs_it(project_origin: Path, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    hostile = f'import os\nos.system("touch {canary}-system")\nopen("{canary}-open", "w").write("ran")\n'
    pr = open_pr(project_origin, tmp_path, lambda repo: add_record(repo, GOOD_LOSSES, extra_source=hostile))
    code, report, stderr = run_ci_in(pr, tmp_path)
    assert not list(tmp_path.glob("canary*")), "code embedded in a submitted log was executed"
    assert not list(pr.rglob("canary*"))
    # Read as text, the code is only what it claims to be: a training script with two odd lines.
    assert code == 0, report + stderr
    assert f"### {NEW_RECORD}: pass" in report and "3.2762 ± 0.0008" in report


def test_pr_outside_records_passes_with_a_note(project_origin: Path, tmp_path: Path) -> None:
    pr = open_pr(project_origin, tmp_path, lambda repo: write(repo / "docs" / "faq.md", "# FAQ\n"), regenerate=False)
    code, report, stderr = run_ci_in(pr, tmp_path)
    assert code == 0, report + stderr
    assert "No record folder changed (1 other paths): nothing to judge." in report
    proc = speedrun(pr, "ci", "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and (data["verdict"], data["records"], data["other_paths"]) == ("pass", [], 1)


def test_pr_with_a_stale_readme_fails(project_origin: Path, tmp_path: Path) -> None:
    def hand_edit(repo: Path) -> None:
        readme = repo / "README.md"
        text = readme.read_text(encoding="utf-8")
        assert "Tuned learning rate & rotary embeddings" in text, "the README carries the record tables"
        readme.write_text(
            text.replace("Tuned learning rate & rotary embeddings", "Hand-edited row", 1), encoding="utf-8"
        )

    pr = open_pr(project_origin, tmp_path, hand_edit, regenerate=False)
    code, report, stderr = run_ci_in(pr, tmp_path)
    assert code == 1, report + stderr
    assert "The README is out of date with `records/`" in report and "Hand-edited row" in report


def test_pr_with_a_truncated_log_needs_review(project_origin: Path, tmp_path: Path) -> None:
    def truncated(repo: Path) -> None:
        add_record(repo, (*GOOD_LOSSES, 3.2759, 3.2763))
        log = repo / NEW_RECORD / "run-1.txt"
        log.write_text(log.read_text(encoding="utf-8").split("step:750/1695")[0], encoding="utf-8")

    pr = open_pr(project_origin, tmp_path, truncated)
    code, report, stderr = run_ci_in(pr, tmp_path)
    assert code == 4, report + stderr
    assert f"### {NEW_RECORD}: review" in report
    review = report.split("Needs review:")[1].split("<details>")[0]
    assert "**complete runs**" in review and f"`{NEW_RECORD}/run-1.txt:" in review


def test_pr_that_waives_a_rule_passes_with_a_note_for_the_maintainers(project_origin: Path, tmp_path: Path) -> None:
    def waived(repo: Path) -> None:
        toml = add_record(repo, GOOD_LOSSES[:1]) / "record.toml"  # one run: the loss cannot be tested
        waiver = '\n[[waivers]]\nrule = "SR003"\nreason = "a faster kernel"\nlink = "https://example.org/pr/9"\n'
        toml.write_text(toml.read_text(encoding="utf-8") + waiver, encoding="utf-8")

    pr = open_pr(project_origin, tmp_path, waived)
    code, report, stderr = run_ci_in(pr, tmp_path)
    assert code == 0, report + stderr
    assert f"### {NEW_RECORD}: pass" in report
    assert "Waived:" in report and "a faster kernel" in report.split("Waived:")[1]
    assert "waives SR003 (a faster kernel; https://example.org/pr/9): only a maintainer may grant a waiver" in report


def test_pr_with_a_malformed_record_toml_is_bad_input(project_origin: Path, tmp_path: Path) -> None:
    def no_time(repo: Path) -> None:
        toml = add_record(repo, GOOD_LOSSES) / "record.toml"
        toml.write_text(toml.read_text(encoding="utf-8").replace('time = "1.250 minutes"\n', ""), encoding="utf-8")

    pr = open_pr(project_origin, tmp_path, no_time, regenerate=False)
    code, report, stderr = run_ci_in(pr, tmp_path)
    assert code == 2, report + stderr
    assert report.startswith("## speedrun ci: bad input")
    # The logs are still judged; with no readable store there is no prior record to be faster than.
    assert f"### {NEW_RECORD}: review" in report and "the records store cannot be read" in report
    problem = f"{NEW_RECORD}/record.toml: missing field 'time'"
    assert f"The records store could not be read: {problem}" in report
    assert stderr.count("\n") == 1 and problem in stderr


def test_pr_with_a_symbolic_link_is_bad_input(project_origin: Path, tmp_path: Path) -> None:
    secret = tmp_path / "runner-file.txt"
    secret.write_text("step:1/1 val_loss:1.0 train_time:1ms step_avg:1ms\n", encoding="utf-8")

    def linked(repo: Path) -> None:
        add_record(repo, GOOD_LOSSES)
        (repo / NEW_RECORD / "run-6.txt").symlink_to(secret)

    pr = open_pr(project_origin, tmp_path, linked, regenerate=False)
    code, report, stderr = run_ci_in(pr, tmp_path)
    assert code == 2, report + stderr
    assert f"### {NEW_RECORD}: bad input" in report
    assert f"{NEW_RECORD}/run-6.txt: a symbolic link" in report
    assert "val loss (mean ± std)" not in report  # nothing was judged, so nothing the link points at is quoted


def test_a_record_folder_that_is_a_link_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "run.txt", "step:1/1 val_loss:3.0 train_time:1ms step_avg:1ms\n")
    (tmp_path / "records" / "track_1_short").mkdir(parents=True)
    (tmp_path / NEW_RECORD).symlink_to(outside, target_is_directory=True)
    result = ci.judge_record(tmp_path, NEW_RECORD)
    assert result.status == "bad input" and not result.judgements
    assert result.bad_input == f"{tmp_path / NEW_RECORD}: a symbolic link; a record folder holds plain files only"


@pytest.mark.archive
def test_report_of_a_real_upstream_record(
    project_origin: Path, upstream_records: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Record 82's logs added to its folder, as a PR would: its runs and its baseline (a re-run of record 81) are
    on H200s, so the baseline's own hardware check needs a review. That is the prior record's, reported apart and
    never among the submission's own checks, yet it leaves the speed comparison to a review."""
    name = "2026-04-29_XSAGatedLayers"
    folder = f"records/track_1_short/{name}"

    def add_logs(repo: Path) -> None:
        source = upstream_records / "track_1_short" / name
        for group in ("baseline-s1440", "this_pr_v1-s1410"):
            shutil.copytree(source / group, repo / folder / group)

    pr = open_pr(project_origin, tmp_path, add_logs, regenerate=False)
    code, report, stderr = run_ci_in(pr, tmp_path)
    with capsys.disabled():
        print(f"\n\n--- speedrun ci on upstream record 82 (exit {code}) ---\n{report}")
    assert code == 4, report + stderr
    assert f"### {folder}: review" in report
    assert f"| `{folder}/baseline-s1440` (baseline) | track_1_short | (review on its own) |" in report
    assert f"| `{folder}/this_pr_v1-s1410` | track_1_short | review |" in report
    assert "Failing checks:" not in report and "Speed:" not in report
    review = report.split("Needs review:")[1].split("The baseline's own checks")[0]
    speed = next(line for line in review.splitlines() if line.startswith("- **speed** (SR005"))
    assert f"`{folder}/this_pr_v1-s1410`): " in speed and "vs baseline" in speed
    assert "its own checks need a review (SR008 hardware)" in speed  # the baseline's H200s: no evidence of speed
    assert f"- **hardware** (SR008, `{folder}/this_pr_v1-s1410`): " in review
    assert f"`{folder}/baseline-s1440" not in review  # the baseline's own checks are not the submission's
    apart = report.split("The baseline's own checks")[1].split("<details>")[0]
    assert f"- **hardware** (SR008, `{folder}/baseline-s1440` (baseline)): " in apart
    assert f"`{folder}/baseline-s1440/" in apart  # the evidence: the baseline's own runs


def test_roles_a_change_names_are_listed_for_the_maintainers(tmp_path: Path) -> None:
    folder = tmp_path / NEW_RECORD
    toml = 'number = 85\ntime = "1.2 minutes"\ndate = 2026-07-01\ndescription = "x"\ncontributors = []\n'
    toml += 'logs = []\npull_requests = []\n\n[roles]\ncandidate = "this_pr"\n'
    write(folder / "record.toml", toml)
    (note,) = ci.waiver_notes(tmp_path, NEW_RECORD)
    assert "names which runs are the submission ([roles])" in note


def test_a_record_the_change_adds_is_judged_by_todays_rules_whatever_date_it_claims(
    project_origin: Path, tmp_path: Path
) -> None:
    def backdated(repo: Path) -> None:  # one run, and a banned flag: fine by the rules of 2024-11
        folder = add_record(repo, GOOD_LOSSES[:1], extra_source=BANNED_FLAG)
        toml = folder / "record.toml"
        toml.write_text(toml.read_text(encoding="utf-8").replace("2026-07-01", "2024-11-01"), encoding="utf-8")
        folder.rename(folder.with_name("2024-11-01_Backdated"))

    pr = open_pr(project_origin, tmp_path, backdated)
    code, report, stderr = run_ci_in(pr, tmp_path)
    assert code == 1, report + stderr
    assert "**compile flags** (SR004" in report.split("Failing checks:")[1]
