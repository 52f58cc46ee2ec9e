"""The record a judged path belongs to, and what the judge takes from it: the date whose rules apply, the
maintainers' waivers and roles, and the prior record it is measured against.

The record is found in the judged tree (`records/<track>/<folder>/record.toml`), else in the records store
(`speedrun/store.py`: the record whose log links name the folder). The prior record comes from the store,
else from the judged tree itself (the record folder before this one, by date, with its logs), so a checkout
newer than the store still compares each record with its true predecessor. A data-pipeline hash pinned in
the store is preferred to one read from logs.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from speedrun.errors import BadInput
from speedrun.judge.discover import (
    TOP_LEVEL_GROUP,
    RoleHints,
    assign_roles,
    code_hash,
    holds_run_logs,
    split_groups,
)
from speedrun.judge.parse import parse_log
from speedrun.judge.rules.base import PriorRecord, timed_runs
from speedrun.judge.runlog import Evidence, RunLog
from speedrun.judge.verdict import Role, RulesDate
from speedrun.store import RECORD_FILE, Record, Waiver, is_url, load_records, read_record, repository_path
from speedrun.tracks import SOURCE_TREE_RECORDS, split_at_track

_DATE_PREFIX = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[_-]|$)")


@dataclass(frozen=True)
class RecordContext:
    """What the judge knows of the record a path belongs to, beyond its logs."""

    folder: Path | None  # records/<track>/<folder>, when the path is inside one
    record: Record | None  # its record.toml: in the judged tree, or the store's record that links the folder
    rules_date: RulesDate
    prior: PriorRecord | None
    prior_note: str  # why there is no prior record, when there is none
    first_of_track: bool
    hints: RoleHints

    @property
    def waivers(self) -> tuple[Waiver, ...]:
        return self.record.judging.waivers if self.record else ()

    @property
    def retimes(self) -> int | None:
        return self.record.retimes if self.record else None


def folder_date(name: str) -> datetime.date | None:
    """The date a record folder's name starts with (2025-07-13_Name, 2026-01-26-Name, 2025-01-18)."""
    match = _DATE_PREFIX.match(name)
    if not match:
        return None
    try:
        return datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def record_context(
    path: Path, track: str, records_dir: Path | None, as_of: datetime.date | None = None
) -> RecordContext:
    """The record `path` belongs to on `track`, its rules date, waivers, role hints and prior record."""
    path = Path(path)
    split = split_at_track(path.resolve(), track)
    records_root = split[0] if split else None
    folder = records_root / track / split[1][0] if split and split[1] and records_root else None
    store, note = _store(track, records_dir)
    own = _own_record(path, folder, track, store, records_root)
    rules_date = _rules_date(as_of, own, folder or _logs_folder(path))
    prior, prior_note, first = _prior(own, folder, track, store, records_root, rules_date.day)
    if note and prior is None:
        prior_note = note
    hints = _hints(own, store, prior, records_root, folder)
    return RecordContext(folder, own, rules_date, prior, prior_note, first, hints)


# --- the store and the record itself ------------------------------------------------------------------------------


def _store(track: str, records_dir: Path | None) -> tuple[list[Record], str]:
    """The published records of `track`: --records, else the project's own. Never a `records/` of the working
    directory unless it is passed: the records a submission is measured against must not come from wherever
    the judge is run."""
    store = records_dir if records_dir is not None else SOURCE_TREE_RECORDS
    if not store.is_dir():
        return [], f"no records store at {store}"
    try:
        records = [r for r in load_records(store) if r.track == track]
    except BadInput as e:
        return [], f"the records store cannot be read ({e})"
    return (records, "") if records else ([], f"no published records for {track}")


def _local(record: Record, link: str, records_root: Path | None) -> Path | None:
    """Where a log link of `record` lies here: beside its record.toml, or under the judged tree's records/."""
    if not is_url(link):
        return record.folder / link
    below = repository_path(link)
    if below is None:
        return None
    for root in (records_root, record.folder.parent.parent):
        if root is not None and (root / below).exists():
            return root / below
    return None


def _linked_folders(record: Record) -> frozenset[str]:
    """The record folder names a record's log links point into (upstream folder names can differ from ours)."""
    return _folders_linked(record.log_urls)


@lru_cache(maxsize=1024)
def _folders_linked(links: tuple[str, ...]) -> frozenset[str]:
    # Cached: every judged path asks it of every record of the store.
    found = set()
    for link in links:
        below = repository_path(link) if is_url(link) else None
        parts = PurePosixPath(below).parts if below else ()
        if len(parts) >= 2:
            found.add(parts[1])
    return frozenset(found)


def _own_record(
    path: Path, folder: Path | None, track: str, store: list[Record], records_root: Path | None
) -> Record | None:
    """The record.toml beside the logs, else the store's record whose folder or links name this folder."""
    if folder is None:
        return None
    beside = folder / RECORD_FILE
    if beside.is_file():
        known = next((r for r in store if r.path.resolve() == beside.resolve()), None)
        if known is not None:
            return known
        try:
            return read_record(beside, track)
        except BadInput:
            # The leaderboard check reports a malformed record.toml; the logs are still judged, by the rules of
            # the folder's date and without the waivers the file may hold (the stricter reading).
            pass
    named = [r for r in store if r.folder.name == folder.name or folder.name in _linked_folders(r)]
    if not named:
        return None
    if path.resolve() != folder.resolve():  # a sub-folder or a log judged alone: the record that links it
        target = path.resolve()
        for record in named:
            for link in record.log_urls:
                local = _local(record, link, records_root)
                if local is not None and (local.resolve() == target or target in local.resolve().parents):
                    return record
    return max(named, key=lambda r: (r.number, r.date or datetime.date.min))


def _logs_folder(path: Path) -> Path:
    """The folder that holds the judged logs, whose dated name (2026-11-30_Name) gives the rules' date when it
    is not a record folder of a track (a submission being prepared, the examples)."""
    return path if path.is_dir() else path.parent


def _rules_date(as_of: datetime.date | None, own: Record | None, folder: Path | None) -> RulesDate:
    if as_of is not None:
        return RulesDate(as_of, "--as-of")
    if own is not None and own.date is not None:
        return RulesDate(own.date, "record.toml")
    day = folder_date(folder.name) if folder is not None else None
    if day is not None:
        return RulesDate(day, "folder name")
    return RulesDate(datetime.date.today(), "today")


# --- the prior record ---------------------------------------------------------------------------------------------


def _order(record: Record) -> tuple[int, datetime.date]:
    return (record.number, record.date or datetime.date.min)


def _prior(
    own: Record | None,
    folder: Path | None,
    track: str,
    store: list[Record],
    records_root: Path | None,
    day: datetime.date,
) -> tuple[PriorRecord | None, str, bool]:
    """(the prior record, why there is none, whether the record is the track's first)."""
    if own is not None:
        if own.retimes is not None:
            timed = [r for r in store if r.number == own.retimes and not r.is_retiming]
            earlier = timed or [r for r in store if r.number < own.number]
        else:
            earlier = [r for r in store if r.number < own.number]
        if not earlier:
            return None, f"record {own.number} is the first of {track}", True
        return _from_store(max(earlier, key=_order)), "", False
    if folder is None:  # logs outside a record folder: the track's record as of the rules date
        dated = [r for r in store if r.date is None or r.date <= day]
    else:  # a record folder the store does not know: the last record published before its date
        dated = [r for r in store if r.date is not None and r.date < day]
    best = max(dated, key=_order) if dated else None
    tree = _tree_prior(folder, store) if folder is not None and records_root is not None else None
    if tree is not None and (best is None or best.date is None or tree[0] > best.date):
        return tree[1], "", False
    if best is None:
        first = bool(store)
        return None, f"no record of {track} before {day}" if first else f"no published records for {track}", first
    return _from_store(best), "", False


def _from_store(record: Record) -> PriorRecord:
    """A record of the store as a prior record: its published time, and the hashes its record.toml pins.

    The data-pipeline hash comes from the pin alone, never from a log: logs in the judged tree are the
    submission's to write, and a forged prior-record log must not make a changed pipeline "unchanged"."""
    date = f", {record.date}" if record.date else ""
    label = f"record {record.number}{date}"
    pinned = record.judging.data_pipeline_sha256
    return PriorRecord(
        record.number,
        record.time_seconds,
        label,
        pinned or None,
        Evidence(record.path) if pinned else None,
        "pinned in its record.toml" if pinned else "",
        code_sha256=tuple(record.judging.code_sha256),
    )


def _tree_prior(folder: Path, store: list[Record]) -> tuple[datetime.date, PriorRecord] | None:
    """The record folder before `folder` in its track folder, by date, with its logs: the prior record of a
    checkout newer than the store. Folders the store knows stand for their store record."""
    day = folder_date(folder.name)
    if day is None:
        return None
    track_folder = folder.parent
    try:
        siblings = sorted(p for p in track_folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return None
    earlier = [(d, p) for p in siblings if (d := folder_date(p.name)) is not None and (d, p.name) < (day, folder.name)]
    for when, sibling in sorted(earlier, reverse=True):
        known = [r for r in store if r.folder.name == sibling.name or sibling.name in _linked_folders(r)]
        if known:
            return when, _from_store(max(known, key=_order))
        if not holds_run_logs(sibling):
            continue
        prior = _prior_from_logs(sibling, store, when)
        if prior is not None:
            return when, prior
    return None


def _prior_from_logs(folder: Path, store: list[Record], when: datetime.date) -> PriorRecord | None:
    """A record folder the store does not know, as a prior record: its candidate runs' mean time and pipeline."""
    try:
        parsed = {key: tuple(parse_log(p) for p in logs) for key, logs in split_groups(folder).items()}
        groups = assign_roles(folder, parsed, RoleHints())
    except BadInput:
        return None
    runs = [r for g in groups if g.role is Role.CANDIDATE for r in g.runs if r.final is not None]
    timed = timed_runs(runs)
    if not timed:
        return None
    mean_s = sum(ms for _, ms in timed) / len(timed) / 1000.0
    number = max((r.number for r in store if r.date is None or r.date <= when), default=0) + 1
    label = f"{folder.name} (the judged tree's record before this one; not in the records store)"
    return PriorRecord(number, mean_s, label)  # no data-pipeline hash: only a record.toml pin gives one


# --- hints for the roles -----------------------------------------------------------------------------------------


def _hints(
    own: Record | None,
    store: list[Record],
    prior: PriorRecord | None,
    records_root: Path | None,
    folder: Path | None,
) -> RoleHints:
    linked: set[Path] = set()
    if own is not None:
        for link in own.log_urls:
            local = _local(own, link, records_root)
            if local is not None:
                linked.add(local.resolve())
    prior_records = [r for r in store if prior is not None and r.number == prior.number]
    prior_code = frozenset(h for r in prior_records for h in r.judging.code_sha256)
    skip = {id(r) for r in prior_records} | ({id(own)} if own is not None else set())
    own_code = set(own.judging.code_sha256) if own is not None else set()
    other_code = {
        h: f"record {r.number}"
        for r in store
        if id(r) not in skip and not (own is not None and r.number == own.number)
        for h in r.judging.code_sha256
        if h not in own_code and h not in prior_code
    }
    return RoleHints(
        roles=own.judging.roles if own is not None else RoleHints().roles,
        linked=frozenset(linked),
        prior_code=prior_code,
        other_code=other_code,
    )


def group_key(folder: Path, run: RunLog) -> str:
    """The group a run of `folder` sits in: "." or its sub-folder."""
    parent = run.path.parent.resolve()
    return TOP_LEVEL_GROUP if parent == folder.resolve() else parent.relative_to(folder.resolve()).as_posix()


def pinned_code(runs: list[RunLog]) -> list[str]:
    """The distinct code hashes of runs, in order: what a record.toml pins as `code_sha256`."""
    return list(dict.fromkeys(h for r in runs if (h := code_hash(r))))
