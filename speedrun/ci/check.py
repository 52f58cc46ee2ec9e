"""The pull-request check: git diff -> changed record folders -> judge each -> leaderboard check -> one report.

Submissions are untrusted. Nothing here imports or runs a file from them: git lists the changed paths,
the judge reads the logs as text, and the leaderboard check re-renders the README from the record TOML files.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any

from speedrun.errors import BadInput
from speedrun.judge.verdict import BAD_INPUT_EXIT, EXIT_CODES, Check, Judgement, Status, Verdict, verdict_of
from speedrun.tracks import TRACK_NAMES

RECORDS = "records"
SPEED_RULES = ("SR005",)  # passing checks worth showing anyway: they carry the record's claim


class Outcome(str, Enum):
    """What the check says of one record folder, and of the whole pull request."""

    PASS = "pass"
    FAIL = "fail"
    REVIEW = "review"  # nothing fails, but a maintainer must confirm something (no waiver covers it)
    BAD_INPUT = "bad input"
    NO_LOGS = "no logs"  # a record folder without run logs (a record.toml edit): nothing to judge

    @classmethod
    def of(cls, verdict: Verdict) -> Outcome:
        return cls(verdict.value)


FOLDERS_LISTED_OPEN = 10  # longer lists of metadata-only folders are collapsed
DIFF_LINES_SHOWN = 80  # a stale README's diff beyond this is cut: the fix is one command anyway


# --- git -----------------------------------------------------------------------------------------------------


def git(root: Path, *args: str) -> str:
    """Run one read-only git command in `root`; a failure is bad input (wrong ref, not a repository)."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, env=env, check=False)
    except FileNotFoundError:
        raise BadInput(None, "git is not installed: the pull-request check needs it") from None
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit code {proc.returncode}"
        raise BadInput(root, f"git {args[0]} failed: {reason}")
    return proc.stdout


def repo_root(path: Path) -> Path:
    """The top of the git work tree that holds `path`."""
    if not path.is_dir():
        raise BadInput(path, "not a folder")
    try:
        return Path(git(path, "rev-parse", "--show-toplevel").strip())
    except BadInput:
        raise BadInput(path, "not inside a git repository") from None


def _commit(root: Path, ref: str) -> str | None:
    if ref.startswith("-"):  # never let a ref be read as an option
        return None
    try:
        return git(root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}").strip()
    except BadInput:
        return None


def _exists_at(root: Path, commit: str, folder: str) -> bool:
    """Whether `folder` held a record.toml at `commit`: a published record, rather than one the change adds."""
    try:
        git(root, "cat-file", "-e", f"{commit}:{folder}/record.toml")
    except BadInput:
        return False
    return True


def default_base(root: Path) -> str:
    """The default branch to compare with: the pull request's target in GitHub Actions, else origin's HEAD,
    else the first of origin/main, origin/master, main, master that exists."""
    candidates = []
    if os.environ.get("GITHUB_BASE_REF"):
        candidates.append(f"origin/{os.environ['GITHUB_BASE_REF']}")
    with contextlib.suppress(BadInput):
        candidates.append(git(root, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD").strip())
    candidates += ["origin/main", "origin/master", "main", "master"]
    for ref in candidates:
        if _commit(root, ref):
            return ref
    raise BadInput(root, "cannot find the default branch (tried origin/HEAD, main, master): pass --base REF")


# --- what changed --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """What a pull request changes, as paths relative to the repository root (POSIX style)."""

    base: str  # the ref compared with, as given or found
    merge_base: str
    head: str
    record_folders: tuple[str, ...]  # records/<track>/<record>, present at HEAD
    removed_folders: tuple[str, ...]  # record folders the change deletes entirely
    track_files: tuple[str, ...]  # files directly under records/<track>/, such as track.toml: the rules themselves
    other_paths: tuple[str, ...]  # everything else


def record_folder_of(path: str) -> str | None:
    """'records/track_1_short/2026-01-01_Name/this_pr/x.txt' -> 'records/track_1_short/2026-01-01_Name'."""
    parts = PurePosixPath(path).parts
    if len(parts) >= 4 and parts[0] == RECORDS and parts[1] in TRACK_NAMES:
        return "/".join(parts[:3])
    return None


def classify(root: Path, paths: list[str]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Split changed paths into (record folders present, record folders removed, track files, other paths)."""
    folders: dict[str, None] = {}  # ordered set
    track_files, other = [], []
    for path in paths:
        parts = PurePosixPath(path).parts
        folder = record_folder_of(path)
        if folder:
            folders[folder] = None
        elif len(parts) == 3 and parts[0] == RECORDS and parts[1] in TRACK_NAMES:
            track_files.append(path)
        else:
            other.append(path)
    present = tuple(sorted(f for f in folders if (root / f).is_dir()))
    removed = tuple(sorted(f for f in folders if not (root / f).is_dir()))
    return present, removed, tuple(sorted(track_files)), tuple(sorted(other))


def find_changes(root: Path, base: str | None = None) -> Changes:
    """The paths changed between the merge base of `base` (default: the default branch) and HEAD."""
    base = base or default_base(root)
    base_commit = _commit(root, base)
    if base_commit is None:
        raise BadInput(root, f"unknown base {base!r}: no such commit here (fetch it, or pass another --base)")
    head = _commit(root, "HEAD")
    if head is None:
        raise BadInput(root, "the repository has no commit at HEAD: commit the change to check first")
    try:
        merge_base = git(root, "merge-base", base_commit, head).strip()
    except BadInput:
        raise BadInput(
            root, f"no merge base between {base} and HEAD: a shallow clone? fetch the full history (fetch-depth: 0)"
        ) from None
    # --no-ext-diff/--no-textconv: no diff driver of any configuration runs while we list the paths.
    listed = git(root, "diff", "--name-only", "-z", "--no-renames", "--no-ext-diff", "--no-textconv", merge_base, head)
    paths = [p for p in listed.split("\0") if p]
    present, removed, track_files, other = classify(root, paths)
    return Changes(base, merge_base, head, present, removed, track_files, other)


# --- judging and the leaderboard -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordResult:
    """The judge's verdict on one changed record folder, or why it could not judge it."""

    folder: str
    judgements: tuple[Judgement, ...] = ()
    bad_input: str | None = None  # one line naming the file and the problem
    judge_markdown: str = ""  # the judge's own full report, for the collapsed details
    judge_json: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> Outcome:
        if self.bad_input:
            return Outcome.BAD_INPUT
        if not self.judgements:
            return Outcome.NO_LOGS
        return Outcome.of(verdict_of(self.judgements))


@dataclass(frozen=True)
class LeaderboardResult:
    """Whether the README tables and chart match what `speedrun leaderboard` would write."""

    up_to_date: bool
    diff: str = ""
    bad_input: str | None = None


def judge_record(root: Path, folder: str, as_of: datetime.date | None = None) -> RecordResult:
    """Judge one record folder (its `baseline*/` sub-folder, if any, as the baseline). Logs are read as text.

    `as_of` is the day whose rules apply; None leaves it to the record's own date (a published record)."""
    from speedrun.judge.discover import holds_run_logs
    from speedrun.judge.judging import judge_path
    from speedrun.judge.report import to_json, to_markdown

    path = root / folder
    links = [path] if path.is_symlink() else sorted(p for p in path.rglob("*") if p.is_symlink())
    if links:  # a link could make the judge read, and the report quote, a file from outside the submission
        problem = BadInput(links[0], "a symbolic link; a record folder holds plain files only")
        return RecordResult(folder, bad_input=str(problem))
    if not holds_run_logs(path):  # metadata only (a record.toml edit): the leaderboard check covers it
        return RecordResult(folder)
    try:
        judgements = judge_path(path, records_dir=root / RECORDS, as_of=as_of)
    except BadInput as e:
        return RecordResult(folder, bad_input=str(e))
    return RecordResult(
        folder,
        tuple(judgements),
        judge_markdown=strip_root(to_markdown(judgements, root / RECORDS), root),
        judge_json=to_json(judgements),
    )


def check_leaderboard(root: Path) -> LeaderboardResult:
    """Re-render the README tables and chart from records/ in memory and compare; writes nothing."""
    from speedrun.leaderboard.generate import diff, generate

    try:
        board = generate(root / RECORDS, root / "README.md")
    except BadInput as e:
        return LeaderboardResult(False, bad_input=str(e))
    return LeaderboardResult(not board.stale, diff(board, max_lines=DIFF_LINES_SHOWN) if board.stale else "")


# --- the report ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CiReport:
    root: Path
    changes: Changes
    records: tuple[RecordResult, ...]
    leaderboard: LeaderboardResult
    notes: tuple[str, ...] = field(default=())

    @property
    def verdict(self) -> Outcome:
        """bad input anywhere, else fail (a rule fails or the README is stale), else review, else pass."""
        if self.leaderboard.bad_input or any(r.bad_input for r in self.records):
            return Outcome.BAD_INPUT
        statuses = {r.status for r in self.records}
        if not self.leaderboard.up_to_date or Outcome.FAIL in statuses:
            return Outcome.FAIL
        return Outcome.REVIEW if Outcome.REVIEW in statuses else Outcome.PASS

    @property
    def exit_code(self) -> int:
        """0 pass, 1 a rule fails or the README is stale, 2 bad input, 4 a record needs a maintainer's review."""
        if self.verdict is Outcome.BAD_INPUT:
            return BAD_INPUT_EXIT
        return EXIT_CODES[Verdict(self.verdict.value)]

    @property
    def problems(self) -> list[str]:
        """The bad-input lines, for stderr."""
        return [r.bad_input for r in self.records if r.bad_input] + (
            [self.leaderboard.bad_input] if self.leaderboard.bad_input else []
        )


def run_ci(path: Path, base: str | None = None) -> CiReport:
    """The whole check for the repository holding `path`: find the changes, judge them, check the README."""
    root = repo_root(path)
    changes = find_changes(root, base)
    # A record the change adds is judged by today's rules: its own record.toml date, or its folder's, is the
    # submitter's to write, and an early one must not bring back the rules of an earlier era.
    today = datetime.date.today()
    records = tuple(
        judge_record(root, folder, None if _exists_at(root, changes.merge_base, folder) else today)
        for folder in changes.record_folders
    )
    notes = tuple(
        f"`{f}` changes the rules the judge applies: a maintainer must review it on its own."
        for f in changes.track_files
    ) + tuple(note for folder in changes.record_folders for note in waiver_notes(root, folder))
    return CiReport(root, changes, records, check_leaderboard(root), notes)


def waiver_notes(root: Path, folder: str) -> list[str]:
    """A note for each waiver a changed record folder's record.toml holds, and for roles it names: both are the
    maintainers' to grant."""
    from speedrun.store import RECORD_FILE, read_record

    path = root / folder / RECORD_FILE
    track = PurePosixPath(folder).parts[1]
    if not path.is_file():
        return []
    try:
        record = read_record(path, track)
    except BadInput:
        return []  # the leaderboard check reports a malformed record.toml
    notes = [
        f"`{folder}/{RECORD_FILE}` waives {w.rule_id} ({w.reason}; {w.link}): only a maintainer may grant a waiver."
        for w in record.judging.waivers
    ]
    roles = record.judging.roles
    if roles.candidate or roles.baseline or roles.other:
        notes.append(
            f"`{folder}/{RECORD_FILE}` names which runs are the submission ([roles]): a maintainer must confirm "
            "that no run was set aside to reach the statistics."
        )
    return notes


def strip_root(text: str, root: Path) -> str:
    """Paths in the judge's text made relative to the repository, so the report reads the same on any machine."""
    for prefix in dict.fromkeys((f"{root}/", f"{root.resolve()}/")):
        text = text.replace(prefix, "")
    return text


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{unit}"


def _relative(root: Path, path: Path | str) -> str:
    path = Path(path)
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _figures_row(label: str, j: Judgement, decides: bool = True) -> str:
    from speedrun.judge.report import verdict_text

    s = j.summary
    cells = [
        label,
        j.track,
        verdict_text(j) if decides else f"({j.verdict.value} on its own)",
        str(s.n),
        f"{_fmt(s.mean_val_loss, '.4f')} ± {_fmt(s.std_val_loss, '.4f')}",
        _fmt(s.p_value, ".2g"),
        _fmt(s.mean_train_time_s, ".2f", " s"),
        _fmt(s.median_train_time_s, ".2f", " s"),
        "–" if s.runs_needed is None else str(s.runs_needed),
    ]
    return "| " + " | ".join(cells) + " |"


def _check_line(root: Path, label: str, check: Check, *, evidence: bool = True, detail: str | None = None) -> str:
    line = f"- **{check.rule}** ({check.rule_id}, {label}): {strip_root(detail or check.detail, root)}"
    if evidence and check.evidence:
        where = ", ".join(f"`{_relative(root, e.file)}{f':{e.line}' if e.line else ''}`" for e in check.evidence[:5])
        more = f" (+{len(check.evidence) - 5} more)" if len(check.evidence) > 5 else ""
        line += f" — {where}{more}"
    return line


def _record_markdown(root: Path, result: RecordResult) -> list[str]:
    from speedrun.judge.report import detail_text

    out = [f"### {result.folder}: {result.status.value}", ""]
    if result.bad_input:
        return [*out, f"The judge could not read this record: {strip_root(result.bad_input, root)}", ""]
    out += [
        "| logs | track | verdict | n | val loss (mean ± std) | p | mean time | median time | runs for p<0.01 |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    candidates = [j for j in result.judgements if j.decides]
    groups = [(f"`{_relative(root, j.path)}`", j) for j in candidates]
    # A baseline is the prior record re-run: its own checks are the prior record's, shown apart, and never among
    # the submission's failing checks; the speed check (SR005) asks for a review when the baseline falls short.
    baselines: list[tuple[str, Judgement]] = []
    for j in candidates:
        if j.baseline is not None and all(j.baseline is not b for _, b in baselines):
            baselines.append((f"`{_relative(root, j.baseline.path)}` (baseline)", j.baseline))
    others = [(f"`{_relative(root, j.path)}` (not the submission)", j) for j in result.judgements if not j.decides]
    out += [_figures_row(label, j, decides=False) for label, j in baselines]
    out += [_figures_row(label, j) for label, j in groups]
    out += [_figures_row(label, j, decides=False) for label, j in others]
    speed = [
        _check_line(root, f"`{_relative(root, j.path)}`", c, evidence=False)
        for j in candidates
        for c in j.checks
        if c.rule_id in SPEED_RULES and c.status is Status.PASS
    ]
    failing, review, waived = [], [], []
    for label, j in groups:
        for c in j.checks:
            used = j.waiver_of(c)
            if used is not None:
                (waived if used.holds else review).append(_check_line(root, label, c, detail=detail_text(j, c)))
            elif c.status is Status.FAIL:
                failing.append(_check_line(root, label, c))
            elif c.status in (Status.WARN, Status.UNCHECKED):
                review.append(_check_line(root, label, c))
    baseline_notes = [
        _check_line(root, label, c)
        for label, j in baselines
        for c in j.checks
        if c.status in (Status.FAIL, Status.WARN, Status.UNCHECKED)
    ]
    sections = (
        ("Speed", speed),
        ("Failing checks", failing),
        ("Needs review", review),
        ("Waived", waived),
        (
            "The baseline's own checks (the prior record re-run: never the submission's own; one that fails or "
            "needs a review leaves the speed comparison to a review)",
            baseline_notes,
        ),
    )
    for title, lines in sections:
        if lines:
            out += ["", f"{title}:", "", *lines]
    if others:
        out += ["", "Not the submission (these never decide the verdict):", ""]
        out += [f"- {label}: {j.role_reason}" for label, j in others]
    if result.judge_markdown:
        out += ["", "<details><summary>The judge's full report</summary>", "", result.judge_markdown.rstrip()]
        out += ["", "</details>"]
    out += [""]
    return out


def to_markdown(report: CiReport) -> str:
    """One Markdown document for the pull request: per record the verdict, figures and failing checks."""
    c = report.changes
    out = [
        f"## speedrun ci: {report.verdict.value}",
        "",
        f"Compared HEAD `{c.head[:10]}` with its merge base with `{c.base}` (`{c.merge_base[:10]}`).",
        "",
    ]
    if not c.record_folders and not c.removed_folders:
        out += [f"No record folder changed ({len(c.other_paths) + len(c.track_files)} other paths): nothing to judge."]
        out += [""]
    for note in report.notes:
        out += [f"> **Note:** {note}", ""]
    for result in report.records:
        if result.status is not Outcome.NO_LOGS:
            out += _record_markdown(report.root, result)
    metadata_only = [r.folder for r in report.records if r.status is Outcome.NO_LOGS]
    if metadata_only or c.removed_folders:
        out += ["### Record folders without run logs", ""]
        out += ["Nothing to judge in these; the leaderboard check below covers their `record.toml`.", ""]
        listed = [f"- `{f}`" for f in metadata_only] + [f"- `{f}` (removed)" for f in c.removed_folders]
        if len(listed) > FOLDERS_LISTED_OPEN:
            out += [f"<details><summary>{len(listed)} folders</summary>", "", *listed, "", "</details>", ""]
        else:
            out += [*listed, ""]
    lb = report.leaderboard
    out += ["### Leaderboard", ""]
    if lb.bad_input:
        out += [f"The records store could not be read: {strip_root(lb.bad_input, report.root)}"]
    elif lb.up_to_date:
        out += ["The README tables and chart match `records/`."]
    else:
        out += [
            "The README is out of date with `records/`: run `speedrun leaderboard` and commit the result.",
            "",
            "```diff",
            *lb.diff.splitlines(),
            "```",
        ]
    return "\n".join(out).rstrip() + "\n"


def to_json(report: CiReport) -> dict[str, Any]:
    """The report for machines: stable keys, the judge's own JSON per record."""
    c = report.changes
    return {
        "verdict": report.verdict.value,
        "exit_code": report.exit_code,
        "base": c.base,
        "merge_base": c.merge_base,
        "head": c.head,
        "records": [
            {
                "folder": r.folder,
                "status": r.status.value,
                "bad_input": r.bad_input,
                "judgements": r.judge_json,
            }
            for r in report.records
        ],
        "removed_folders": list(c.removed_folders),
        "track_files": list(c.track_files),
        "other_paths": len(c.other_paths),
        "leaderboard": {
            "up_to_date": report.leaderboard.up_to_date,
            "diff": report.leaderboard.diff,
            "bad_input": report.leaderboard.bad_input,
        },
        "notes": list(report.notes),
    }


def append_summary(path: Path, markdown: str) -> None:
    """Append the report to a file such as $GITHUB_STEP_SUMMARY; never truncates what is there."""
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(markdown if markdown.endswith("\n") else markdown + "\n")
    except OSError as e:
        raise BadInput(path, f"cannot append the summary: {e.strerror or e}") from None


def dumps(report: CiReport) -> str:
    return json.dumps(to_json(report), indent=2, default=str)
