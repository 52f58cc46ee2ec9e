"""Check a record's published claims against its logs, with the judge.

A record's first log link names its runs: the judge reads the folder that holds the linked log (the whole
record folder, so that a `baseline*` sub-folder becomes the baseline) and the judgement that contains the
linked log gives the row's figures: n runs, mean loss, p-value. The published time agrees with the logs
when it equals, to the published precision, the linked log's own time, the mean time of the runs, or the
judge's time normalised against the baseline re-run.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from speedrun.errors import BadInput
from speedrun.judge.verdict import Judgement
from speedrun.store import PUBLISHED_TIME, UNIT_SECONDS, Record, local_log_path
from speedrun.tracks import split_at_track

JudgeFunction = Callable[..., list[Judgement]]

NORMALISED_FIGURE = "normalised_time_s"  # prior record time x candidate mean / baseline mean


@dataclass(frozen=True)
class Verification:
    """What the judge found in a record's logs, and whether the published time agrees with it."""

    judged: Path  # the folder (or file) whose judgement backs the row
    linked_log: Path
    n: int
    mean_val_loss: float
    p_value: float | None
    verdict: str
    log_time_s: float | None  # the linked log's own train_time
    mean_time_s: float | None
    normalised_time_s: float | None  # prior record time x candidate mean / baseline mean, when judged
    time_source: str | None  # which of the above the published time matches: "log", "mean", "normalised"
    root: Path | None = None  # the record's folder (here, or under --logs) that the log paths are relative to
    run_sha256: tuple[tuple[Path, str], ...] = ()  # each judged run log and the sha256 of its bytes

    @property
    def time_agrees(self) -> bool:
        return self.time_source is not None


def shows_as(seconds: float, record: Record) -> bool:
    """Whether `seconds`, cut to the digits of the published time ('2.933 minutes'), is that time.

    Authors cut a log's or a mean's time to a few digits by rounding down, up or to nearest, so any of the
    three counts: the published value lies less than one unit of its last digit from the time.
    """
    match = PUBLISHED_TIME.match(record.time_text)
    if match is None:
        return False
    digits = match["value"]
    unit = 10.0 ** -len(digits.partition(".")[2])
    scaled = seconds / UNIT_SECONDS[match["unit"]]
    return abs(scaled - float(digits)) < unit * (1 - 1e-9)


def agreeing_source(record: Record, candidates: dict[str, float | None]) -> str | None:
    """The first candidate time that shows as the published time."""
    for source, seconds in candidates.items():
        if seconds is not None and shows_as(seconds, record):
            return source
    return None


def verify_records(
    records: Iterable[Record],
    logs_dir: Path | None,
    *,
    records_dir: Path | None = None,
    judge: JudgeFunction | None = None,
    workers: int | None = None,
) -> dict[Record, Verification]:
    """Judge every record whose logs are on this machine; records without local logs are left out.

    A folder that holds the linked logs of several records (upstream kept two medium-track records in one
    folder) is not one record's set of runs, so each of those records is judged on its linked file alone.
    With the real judge and many records, the records are judged in `workers` processes (default: one per
    CPU), since parsing the logs is most of the work.
    """
    linked = {record: _first_local_log(record, logs_dir) for record in records}
    folders = Counter(path.parent if path.is_file() else path for path in linked.values() if path is not None)
    tasks = [
        _Task(record, log, _record_root(record, log), folders[log.parent if log.is_file() else log] > 1, records_dir)
        for record, log in linked.items()
        if log is not None
    ]
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if judge is not None or workers < 2 or len(tasks) < 8:
        return {task.record: task.run(judge) for task in tasks}
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        outcomes = list(pool.map(_run_task, tasks))
    results = {}
    for task, outcome in zip(tasks, outcomes, strict=True):
        if isinstance(outcome, tuple):  # BadInput does not survive pickling; it comes back as its parts
            raise BadInput(*outcome)
        results[task.record] = outcome
    return results


@dataclass(frozen=True)
class _Task:
    record: Record
    log: Path
    root: Path
    shared: bool
    records_dir: Path | None

    def run(self, judge: JudgeFunction | None) -> Verification:
        if judge is None:
            from speedrun.judge.judging import judge_path as judge
        return _verify(self.record, self.log, self.root, self.shared, judge, self.records_dir)


def _run_task(task: _Task) -> Verification | tuple[str | None, str]:
    try:
        return task.run(None)
    except BadInput as e:
        return (e.path, e.problem)


def _first_local_log(record: Record, logs_dir: Path | None) -> Path | None:
    for link in record.log_urls:
        path = local_log_path(record, link, logs_dir)
        if path is not None:
            return path.resolve()
    return None


def _record_root(record: Record, log: Path) -> Path:
    """The folder of the record that holds `log`: its own folder, or `<logs>/<track>/<folder>` upstream."""
    if record.folder.resolve() in log.parents or log == record.folder.resolve():
        return record.folder.resolve()
    split = split_at_track(log, record.track)
    if split and split[1]:
        return split[0] / record.track / split[1][0]
    return log.parent if log.is_file() else log


def _verify(
    record: Record, log: Path, root: Path, shared: bool, judge: JudgeFunction, records_dir: Path | None
) -> Verification:
    attempts = [log] if shared else [root, log.parent, log] if log.is_file() else [root, log]
    problem: BadInput | None = None
    for target in dict.fromkeys(attempts):
        try:
            judgements = judge(target, track=record.track, records_dir=records_dir)
        except BadInput as e:
            problem = e
            continue
        chosen = _containing(judgements, log)
        if chosen is not None:
            return _figures(record, log, chosen, root)
    if problem is not None:
        raise BadInput(record.path, f"field 'logs': the judge cannot read {log}: {problem}")
    raise BadInput(record.path, f"field 'logs': the judge found no run log at {log}")


def _containing(judgements: list[Judgement], log: Path) -> Judgement | None:
    for judgement in judgements:
        if log.is_dir() and judgement.path.resolve() == log:
            return judgement
        if any(run.path.resolve() == log for run in (*judgement.runs, *judgement.incomplete)):
            return judgement
    if log.is_dir() and len(judgements) == 1:
        return judgements[0]
    return None


def _figures(record: Record, log: Path, judgement: Judgement, root: Path) -> Verification:
    summary = judgement.summary
    own = next((run for run in judgement.runs if run.path.resolve() == log), None)
    log_time_s = own.train_time_ms / 1000 if own is not None and own.train_time_ms is not None else None
    normalised = normalised_time_s(judgement)
    time_source = agreeing_source(
        record, {"log": log_time_s, "mean": summary.mean_train_time_s, "normalised": normalised}
    )
    return Verification(
        judged=judgement.path,
        linked_log=log,
        n=summary.n,
        mean_val_loss=summary.mean_val_loss,
        p_value=summary.p_value,
        verdict=judgement.verdict.value,
        log_time_s=log_time_s,
        mean_time_s=summary.mean_train_time_s,
        normalised_time_s=normalised,
        time_source=time_source,
        root=root,
        run_sha256=tuple((run.path.resolve(), run.sha256) for run in judgement.runs),
    )


def normalised_time_s(judgement: Judgement) -> float | None:
    """The judge's record time normalised against the baseline re-run (its speed check's figure), if any."""
    for check in judgement.checks:
        value = check.figures.get(NORMALISED_FIGURE) if check.rule == "speed" else None
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
    return None
