"""`speedrun records new`: a new record folder from a set of logs, with what the judge computes filled in.

The logs are copied into a hidden staging folder beside the target, judged there, and the staging folder
is renamed into place only when everything succeeded, so a failure never leaves a half-written record.
The staging folder is gone by the time anything is printed, so every file:line the judge cites is shown as
the file it names: in the new record folder once written, else the file that was given.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speedrun.console import shown_path
from speedrun.errors import BadInput
from speedrun.judge.discover import is_hidden
from speedrun.judge.verdict import Judgement, Status, Verdict
from speedrun.leaderboard.verify import normalised_time_s
from speedrun.store import RECORD_FILE, default_records_dir, load_records, read_record
from speedrun.tracks import canonical_name

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


@dataclass(frozen=True)
class Scaffold:
    """The record folder made (or refused) and the judgement behind its figures."""

    folder: Path
    number: int
    time_text: str
    time_source: str  # "normalised against the baseline" or "mean of the runs"
    record_toml: str
    judgement: Judgement
    written: bool
    cited_as: tuple[tuple[str, str], ...] = ()  # (a path in the staging folder, the path it is shown as)

    def cite(self, text: str) -> str:
        return _cite(self.cited_as, text)

    def summary(self) -> str:
        """What was done and the figures, then each check that fails or needs a review, with the lines it cites."""
        s = self.judgement.summary
        p = "n/a" if s.p_value is None else f"{s.p_value:.3g}"
        figures = (
            f"record {self.number}, {self.time_text} ({self.time_source}), "
            f"{s.n} runs, mean loss {s.mean_val_loss:.4f}, p={p}"
        )
        if self.written:
            verdict = self.judgement.verdict.value
            if self.judgement.verdict is Verdict.REVIEW:  # what the judge cannot confirm, a maintainer must
                verdict += ", not a record until a maintainer confirms:"
            head = f"wrote {shown_path(self.folder / RECORD_FILE)}: {figures}; judge verdict: {verdict}"
        else:
            head = f"not written (the judge fails these logs; --force writes anyway): {figures}"
        return self.cite("\n".join([head, *_notes(self.judgement)]))

    def to_json(self) -> dict[str, Any]:
        s = self.judgement.summary
        return {
            "folder": str(self.folder),
            "written": self.written,
            "number": self.number,
            "time": self.time_text,
            "time_source": self.time_source,
            "verdict": self.judgement.verdict.value,
            "n": s.n,
            "mean_val_loss": s.mean_val_loss,
            "p_value": s.p_value,
            "record_toml": self.record_toml,
        }


def scaffold(
    logs: list[Path],
    *,
    track: str,
    name: str,
    description: str,
    contributors: list[str],
    pull_requests: list[str],
    day: datetime.date,
    records_dir: Path | None = None,
    force: bool = False,
) -> Scaffold:
    """Copy `logs` into records/<track>/<day>_<name>/, judge them, and write its record.toml."""
    from speedrun.judge.judging import judge_path

    track = canonical_name(track)
    if not _NAME.match(name):
        raise BadInput(None, f"--name {name!r}: use letters, digits and '-' (e.g. BatchSize)")
    if day > datetime.date.today():
        raise BadInput(None, f"--date {day} is in the future")
    root = records_dir if records_dir is not None else default_records_dir()
    existing = [r for r in load_records(root) if r.track == track]
    number = max((r.number for r in existing), default=0) + 1
    folder = root / track / f"{day.isoformat()}_{name}"
    if folder.exists():
        raise BadInput(folder, "already exists; nothing was overwritten (pick another --name or --date)")
    files = _files_to_copy(logs)

    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".new-{name}-", dir=folder.parent))
    given = logs[0] if len(logs) == 1 and logs[0].is_dir() else folder
    as_given = _citations(stage, [(str(source), relative) for source, relative in files], str(given))
    try:
        for source, relative in files:
            target = stage / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        try:
            judgement = _main_judgement(judge_path(stage, track=track, records_dir=root), stage)
        except BadInput as e:
            raise BadInput(_cite(as_given, e.path or str(stage)), _cite(as_given, e.problem)) from None
        normalised = normalised_time_s(judgement)
        if normalised is not None:
            seconds, source_text = normalised, "normalised against the baseline"
        elif judgement.summary.mean_train_time_s is not None:
            seconds, source_text = judgement.summary.mean_train_time_s, "mean of the runs"
        else:
            raise BadInput(logs[0], "the judge found no train_time in these logs, so there is no record time")
        time_text = f"{seconds / 60:.3f} minutes"
        # One link, to the submission's first log, as the published rows have: the leaderboard judges the whole
        # record folder from it and lists every run's sha256 in the [verified] block.
        main_log = min(run.path.resolve().relative_to(stage.resolve()).as_posix() for run in judgement.runs)
        text = _record_toml(number, time_text, day, description, contributors, [main_log], pull_requests, judgement)
        written = judgement.verdict is not Verdict.FAIL or force  # a review is for the maintainers to do
        if written:
            (stage / RECORD_FILE).write_text(text, encoding="utf-8")
            read_record(stage / RECORD_FILE, track)  # what we wrote must load
            stage.rename(folder)
        shown = shown_path(folder)
        cited_as = _citations(stage, [(f"{shown}/{r.as_posix()}", r) for _, r in files], shown) if written else as_given
        return Scaffold(folder, number, time_text, source_text, text, judgement, written, cited_as)
    finally:
        if stage.exists():
            shutil.rmtree(stage)


def _files_to_copy(logs: list[Path]) -> list[tuple[Path, Path]]:
    """(source, path inside the record folder) for every regular file given or under a given folder.

    One folder given is the submission itself: its contents (logs, baseline/, this_pr/) become the record
    folder's. Among several paths, each folder keeps its name (`this_pr/ baseline/` stay two sub-folders).
    """
    files: list[tuple[Path, Path]] = []
    for given in logs:
        if given.is_symlink() or not given.exists():
            raise BadInput(given, "does not exist (or is a symbolic link)")
        if given.is_file():
            files.append((given, Path(given.name)))
            continue
        prefix = Path() if len(logs) == 1 else Path(given.resolve().name)
        for path in sorted(given.rglob("*")):
            relative = prefix / path.relative_to(given)
            if is_hidden(relative) or path.is_symlink() or not path.is_file():
                continue
            files.append((path, relative))
    seen: dict[Path, Path] = {}
    for source, relative in files:
        if relative in seen:
            raise BadInput(source, f"has the same name in the record folder as {seen[relative]}")
        seen[relative] = source
    if not files:
        raise BadInput(logs[0] if logs else None, "no files to put in the record folder")
    return files


def _citations(stage: Path, files: list[tuple[str, Path]], folder: str) -> tuple[tuple[str, str], ...]:
    """(path in the staging folder, path to show) for each file and for the staging folder itself, longest
    first so that no path is rewritten by a shorter one it starts with."""
    pairs = []
    for prefix in dict.fromkeys((str(stage), str(stage.resolve()))):
        pairs += [(f"{prefix}/{relative.as_posix()}", shown) for shown, relative in files]
        pairs.append((prefix, folder))
    return tuple(sorted(pairs, key=lambda pair: -len(pair[0])))


CITED_PER_CHECK = 3  # the lines shown under a check; the judge's report has them all


def _notes(judgement: Judgement) -> list[str]:
    """`fail: rule: detail` or `review: ...` for each check that fails or needs a review, and what it cites."""
    from speedrun.judge.report import detail_text

    notes = []
    for check in judgement.checks:
        used = judgement.waiver_of(check)
        if used is not None and used.holds:
            continue
        if check.status is Status.FAIL:
            kind = "fail"
        elif used is not None or check.status in (Status.WARN, Status.UNCHECKED):
            kind = "review"
        else:
            continue
        notes.append(f"  {kind}: {check.rule}: {detail_text(judgement, check)}")
        cited = list(dict.fromkeys(str(e) for e in check.evidence))
        notes += [f"    {where}" for where in cited[:CITED_PER_CHECK]]
        if len(cited) > CITED_PER_CHECK:
            notes.append(f"    and {len(cited) - CITED_PER_CHECK} more lines")
    return notes


def _cite(cited_as: tuple[tuple[str, str], ...], text: str) -> str:
    """`text` with every path into the staging folder replaced by the file it names."""
    for staged, shown in cited_as:
        text = text.replace(staged, shown)
    return text


def _main_judgement(judgements: list[Judgement], stage: Path) -> Judgement:
    """The candidate's judgement: the only one, else the one with the most runs."""
    candidates = [j for j in judgements if j.decides]
    if not candidates:
        raise BadInput(stage, "the judge found no runs")
    return max(candidates, key=lambda j: j.summary.n)


def _record_toml(
    number: int,
    time_text: str,
    day: datetime.date,
    description: str,
    contributors: list[str],
    logs: list[str],
    pull_requests: list[str],
    judgement: Judgement,
) -> str:
    s = judgement.summary
    p = "n/a" if s.p_value is None else f"{s.p_value:.3g}"

    def strings(values: list[str]) -> str:
        return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"

    lines = [
        f"# Scaffolded by `speedrun records new`; the judge gave: {s.n} runs, mean val loss {s.mean_val_loss:.4f},",
        f"# p={p}, verdict {judgement.verdict.value}. Edit the description and contributors as needed.",
        f"number = {number}",
        f"time = {json.dumps(time_text)}",
        f"date = {day.isoformat()}",
        f"description = {json.dumps(' '.join(description.split()), ensure_ascii=False)}",
        f"contributors = {strings(contributors)}",
        f"logs = {strings(logs)}",
        f"pull_requests = {strings(pull_requests)}",
    ]
    return "\n".join(lines) + "\n"
