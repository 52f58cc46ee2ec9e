"""The records workflow stays safe to run on untrusted pull requests: actionlint and zizmor lint it, and the
properties the security model rests on are asserted one by one, so a regression fails our own CI."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW = WORKFLOWS / "records.yml"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _tool(name: str) -> str:
    """The linter next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is a test dependency: pip install -e '.[test]'"
    return found


def _lint_copy(tmp_path: Path, text: str) -> Path:
    """A throw-away git repository holding `text` as its only workflow (actionlint needs a repository)."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "records.yml").write_text(text, encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def _actionlint(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("actionlint"), "-no-color"], cwd=repo, capture_output=True, text=True)


def _zizmor(repo: Path) -> subprocess.CompletedProcess[str]:
    cmd = [_tool("zizmor"), "--offline", "--pedantic", "--no-progress", str(repo / ".github" / "workflows")]
    return subprocess.run(cmd, capture_output=True, text=True)


def _workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the bare key `on` as True
    return data


def test_actionlint_clean(tmp_path: Path) -> None:
    proc = _actionlint(_lint_copy(tmp_path, WORKFLOW.read_text(encoding="utf-8")))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_clean(tmp_path: Path) -> None:
    proc = _zizmor(_lint_copy(tmp_path, WORKFLOW.read_text(encoding="utf-8")))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_linters_catch_a_dangerous_regression(tmp_path: Path) -> None:
    """The lint tests can fail: pull_request_target with the PR's code checked out and an unpinned action."""
    text = WORKFLOW.read_text(encoding="utf-8")
    text = text.replace("  pull_request:\n", "  pull_request_target:\n", 1)
    text = re.sub(r"actions/setup-python@[0-9a-f]{40}", "actions/setup-python@v6", text)
    text = text.replace(
        "ref: ${{ github.event.pull_request.base.sha }}", "ref: ${{ github.event.pull_request.head.sha }}"
    )
    proc = _zizmor(_lint_copy(tmp_path, text))
    assert proc.returncode != 0
    assert "dangerous-triggers" in proc.stdout + proc.stderr
    assert "unpinned-uses" in proc.stdout + proc.stderr


def test_triggers_are_safe_for_untrusted_code() -> None:
    wf = _workflow()
    assert set(wf["on"]) == {"pull_request", "push"}
    assert "pull_request_target" not in WORKFLOW.read_text(encoding="utf-8")


def test_permissions_are_read_only_and_no_secrets_are_used() -> None:
    wf = _workflow()
    assert wf["permissions"] == {"contents": "read"}
    for job in wf["jobs"].values():
        assert set(job.get("permissions", {}).values()) <= {"read", "none"}
    assert "secrets." not in WORKFLOW.read_text(encoding="utf-8")


def test_every_action_is_pinned_to_a_commit_and_keeps_no_credentials() -> None:
    for job in _workflow()["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert PINNED.match(step["uses"]), step["uses"]
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_pull_requests_run_the_check_with_trusted_code_and_no_torch() -> None:
    steps = _workflow()["jobs"]["judge"]["steps"]
    checkouts = [s for s in steps if s.get("uses", "").startswith("actions/checkout@")]
    submission = next(s for s in checkouts if s["with"]["path"] == "submission")
    toolkit = next(s for s in checkouts if s["with"]["path"] == "toolkit")
    assert submission["with"]["fetch-depth"] == 0  # the merge base must be in the clone
    assert toolkit["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"  # never the PR's own code
    runs = [s["run"] for s in steps if "run" in s]
    assert any("pip install ./toolkit" in r and "torch" not in r and "[train]" not in r for r in runs)
    assert any(r.startswith("speedrun ci ") and "$GITHUB_STEP_SUMMARY" in r for r in runs)
    assert not any("submission/" in r or "python submission" in r for r in runs)  # nothing from the PR runs


def test_pushes_to_the_default_branch_check_the_leaderboard() -> None:
    wf = _workflow()
    assert wf["on"]["push"]["branches"] == ["main"]
    job = wf["jobs"]["leaderboard"]
    assert job["if"] == "github.event_name == 'push'"
    assert any(s.get("run") == "speedrun leaderboard --check" for s in job["steps"])


@pytest.mark.parametrize("name", ["actionlint", "zizmor"])
def test_linters_are_installed(name: str) -> None:
    proc = subprocess.run([_tool(name), "--version"], capture_output=True, text=True)
    assert proc.returncode == 0
