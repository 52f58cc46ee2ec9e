"""Judge a path: find its logs, group them, parse them, pick the track and the prior record, apply the rules.

`judge_path` is the entry point the CLI, the leaderboard and CI call. A record folder whose logs sit in
sub-folders is judged per sub-folder; a `baseline*` sub-folder is the baseline of the others.
"""

from __future__ import annotations

import datetime
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from speedrun.errors import BadInput
from speedrun.judge import stats
from speedrun.judge.discover import TOP_LEVEL_GROUP, find_run_logs, split_groups
from speedrun.judge.parse import collector_paused, parse_log
from speedrun.judge.pipeline import data_pipeline_hash, data_pipeline_line
from speedrun.judge.rules import (
    PriorRecord,
    RuleInput,
    apply_rules,
    finite_losses,
    independent_runs,
    source_evidence,
    timed_runs,
)
from speedrun.judge.runlog import Evidence, RunLog
from speedrun.judge.verdict import Judgement, Summary
from speedrun.tracks import (
    SOURCE_TREE_RECORDS,
    TRACK_NAMES,
    Track,
    canonical_name,
    load_track,
    split_at_track,
    track_from_path,
)

if TYPE_CHECKING:
    from speedrun.store import Record

BASELINE_PREFIX = "baseline"
MODEL_DIM_TRACKS = {768: "track_1_short", 1024: "track_2_medium"}
_MODEL_DIM = re.compile(r"\b(?:model_dim|n_embd)\s*[:=]\s*(\d+)")
# Logs judged in this process and their data-pipeline hashes: a prior record is often judged just before.
_PIPELINE_BY_FILE: dict[Path, str | None] = {}
_RECORD_LOG_URL = re.compile(r"/records/(?P<path>(?P<track>track_[^/]+)/(?P<folder>[^/]+)/.+)$")


def parse_runs(logs: list[Path]) -> tuple[RunLog, ...]:
    """Parse logs; a log without a single val loss cannot be judged and is bad input."""
    runs = []
    with collector_paused():  # one garbage collection for the whole group, not one per log
        for log in logs:
            run = parse_log(log)
            if run.final is None:
                last = run.steps[-1] if run.steps else None
                where = f" (last step line {last.step}/{last.total_steps} at line {last.line})" if last else ""
                raise BadInput(log, f"truncated log: no val loss line{where}")
            runs.append(run)
            if run.source:
                _PIPELINE_BY_FILE[log.resolve()] = data_pipeline_hash(run.source)
    return tuple(runs)


def choose_track(path: Path, runs: tuple[RunLog, ...], track: str | None) -> tuple[str, str]:
    """The track to judge against and how it was chosen: --track, else the path, else the run's config (our
    trainer writes its track there), else the model size in the config or embedded source."""
    if track:
        return canonical_name(track), "--track"
    from_path = track_from_path(path)
    if from_path:
        return from_path, "path"
    for run in runs:
        named = run.config.get("track") if run.config else None
        if named in TRACK_NAMES:
            return str(named), f"config line {run.config_line}"
    for run in runs:
        dims = _model_dims(run)
        if dims in MODEL_DIM_TRACKS:
            return MODEL_DIM_TRACKS[dims], f"model size (model_dim {dims})"
    return TRACK_NAMES[0], "default (neither --track, the path nor the model size tells)"


def _model_dims(run: RunLog) -> int | None:
    if run.config:
        found = _find_key(run.config, ("model_dim", "n_embd"))
        if isinstance(found, int):
            return found
    if run.source:
        match = _MODEL_DIM.search(run.source)
        if match:
            return int(match.group(1))
    return None


def _find_key(tree: object, keys: tuple[str, ...]) -> object:
    if isinstance(tree, dict):
        for key in keys:
            if key in tree:
                return tree[key]
        for value in tree.values():
            found = _find_key(value, keys)
            if found is not None:
                return found
    return None


def summarise(runs: tuple[RunLog, ...], target: float) -> Summary:
    """The headline figures of a group of (independent) runs."""
    losses = [v for _, v in finite_losses(runs)]
    times = [ms / 1000.0 for _, ms in timed_runs(runs)]
    loss = stats.describe(losses) if losses else None
    time = stats.describe(times) if times else None
    needed = stats.runs_needed(loss.mean, loss.std, target) if loss and loss.n >= 2 else None
    return Summary(
        n=len(losses),
        mean_val_loss=loss.mean if loss else math.nan,
        std_val_loss=loss.std if loss else math.nan,
        p_value=stats.one_sided_ttest(losses, target),
        mean_train_time_s=time.mean if time else None,
        median_train_time_s=time.median if time else None,
        std_train_time_s=time.std if time else None,
        min_train_time_s=time.min if time else None,
        max_train_time_s=time.max if time else None,
        runs_needed=needed,
    )


def judge_runs(
    path: Path,
    runs: tuple[RunLog, ...],
    track: Track,
    track_reason: str,
    *,
    baseline: Judgement | None = None,
    prior: PriorRecord | None = None,
    prior_note: str = "",
    is_baseline: bool = False,
) -> Judgement:
    """Apply every rule to one group of runs."""
    independent = independent_runs(runs)
    rule_input = RuleInput(
        track=track,
        runs=runs,
        independent=independent,
        baseline=independent_runs(baseline.runs) if baseline else None,
        prior=prior,
        prior_note=prior_note,
        is_baseline=is_baseline,
    )
    return Judgement(
        path=path,
        track=track.name,
        track_reason=track_reason,
        runs=runs,
        summary=summarise(independent, track.target_val_loss),
        checks=apply_rules(rule_input),
        baseline=baseline,
    )


def judge_path(
    path: Path,
    *,
    track: str | None = None,
    baseline: Path | None = None,
    records_dir: Path | None = None,
) -> list[Judgement]:
    """Judge a log file or a folder: one Judgement per group of runs that is not the baseline."""
    path = Path(path)
    groups = {key: parse_runs(logs) for key, logs in split_groups(path).items()}
    baseline_key: str | None = None
    baseline_path: Path | None = None
    baseline_runs: tuple[RunLog, ...] = ()
    if baseline is not None:
        baseline_path = Path(baseline)
        inside = [k for k in groups if (path / k).resolve() == baseline_path.resolve()]
        baseline_key = inside[0] if inside else None
        baseline_runs = groups[baseline_key] if baseline_key else parse_runs(find_run_logs(baseline_path))
    else:
        candidates = [k for k in groups if k != TOP_LEVEL_GROUP and Path(k).name.lower().startswith(BASELINE_PREFIX)]
        baseline_key = pick_baseline({k: groups[k] for k in candidates})
        if baseline_key is not None and len(groups) == 1:
            baseline_key = None  # a folder holding only a baseline is judged as a submission of its own
        if baseline_key is not None:
            baseline_path, baseline_runs = path / baseline_key, groups[baseline_key]
        else:
            baseline_path, baseline_runs = _sibling_baseline(path)
    all_runs = tuple(r for runs in groups.values() for r in runs)
    track_name, track_reason = choose_track(path, all_runs, track)
    track_spec = load_track(track_name, records_dir)
    prior, prior_note = prior_record(path, track_name, records_dir)

    baseline_judgement = None
    if baseline_path is not None and baseline_runs:
        baseline_judgement = judge_runs(
            baseline_path, baseline_runs, track_spec, track_reason, prior=prior, prior_note=prior_note, is_baseline=True
        )
    judgements = []
    for key, runs in groups.items():
        if key == baseline_key:
            continue
        group_path = path if key == TOP_LEVEL_GROUP else path / key
        judgements.append(
            judge_runs(
                group_path,
                runs,
                track_spec,
                track_reason,
                baseline=baseline_judgement,
                prior=prior,
                prior_note=prior_note,
            )
        )
    return judgements


def _sibling_baseline(path: Path) -> tuple[Path | None, tuple[RunLog, ...]]:
    """For a record's sub-folder judged on its own (this_pr/), the record's baseline* folder beside it."""
    if not path.is_dir() or path.name.lower().startswith(BASELINE_PREFIX):
        return None, ()
    siblings = {p.name: p for p in path.parent.iterdir() if p.is_dir() and p.name.lower().startswith(BASELINE_PREFIX)}
    found: dict[str, tuple[RunLog, ...]] = {}
    for name, folder in siblings.items():
        try:
            found[name] = parse_runs(find_run_logs(folder))
        except BadInput:
            continue  # an empty or broken baseline beside the judged folder is not the judged folder's problem
    chosen = pick_baseline(found)
    return (siblings[chosen], found[chosen]) if chosen else (None, ())


def pick_baseline(candidates: dict[str, tuple[RunLog, ...]]) -> str | None:
    """Which `baseline*` sub-folder is the baseline: `baseline` itself, else the one whose runs are longest.

    Folders such as baseline-s1430/ and baseline-s1480/ re-run the prior record at several step counts;
    the prior record as published is the full schedule, and shorter ones are ablations. --baseline overrides.
    """
    if not candidates:
        return None
    if "baseline" in candidates:
        return "baseline"

    def longest_run(key: str) -> int:
        return max((step.step for run in candidates[key] if (step := run.final) is not None), default=0)

    return max(sorted(candidates), key=longest_run)


# --- the prior record, from the records store ------------------------------------------------------------------


def prior_record(path: Path, track: str, records_dir: Path | None) -> tuple[PriorRecord | None, str]:
    """The record the judged path is measured against, and a note saying why when there is none.

    When the path is one of the published records (its folder is named in a record's log links), that is
    the record before it; otherwise the current record of the track.
    """
    from speedrun.store import load_records

    # Without --records: ./records, else the project's own; a ./records of logs only (the upstream archive's
    # layout) holds no record.toml, and then the project's published records still apply.
    stores = [records_dir] if records_dir is not None else [None, SOURCE_TREE_RECORDS]
    records: list[Record] = []
    for store in stores:
        if store is not None and not store.is_dir():
            continue
        try:
            records = [r for r in load_records(store) if r.track == track]
        except BadInput as e:
            return None, f"the records store cannot be read ({e})"
        if records:
            break
    if not records:
        return None, f"no published records for {track}"

    folder = _record_folder_name(path, track)
    own = [r for r in records if folder and (r.folder.name == folder or folder in _linked_folders(r.log_urls))]
    if own:
        number = min(r.number for r in own)
        earlier = [r for r in records if r.number < number]
        if not earlier:
            return None, f"record {number} is the first of {track}"
        prior = max(earlier, key=_publication_order)
    else:
        prior = max(records, key=_publication_order)
    pipeline, evidence = _prior_pipeline(prior, path, track)
    date = f", {prior.date}" if prior.date else ""
    label = f"record {prior.number}{date}"
    return PriorRecord(prior.number, prior.time_seconds, label, pipeline, evidence), ""


def _publication_order(record: Record) -> tuple[int, datetime.date]:
    return (record.number, record.date or datetime.date.min)


def _record_folder_name(path: Path, track: str) -> str | None:
    split = split_at_track(path.resolve(), track)
    return split[1][0] if split and split[1] else None


def _linked_folders(urls: tuple[str, ...]) -> set[str]:
    return {m["folder"] for u in urls if (m := _RECORD_LOG_URL.search(u))}


def _prior_pipeline(prior: Record, path: Path, track: str) -> tuple[str | None, Evidence | None]:
    """The prior record's data-pipeline hash, from its first log found locally (beside the judged folder)."""
    split = split_at_track(path.resolve(), track)
    records_root = split[0] if split else None
    for link in prior.log_urls:
        match = _RECORD_LOG_URL.search(link)
        if match and records_root is not None:
            local = records_root / match["path"]
        elif "://" not in link:
            local = prior.folder / link
        else:
            continue
        known = _PIPELINE_BY_FILE.get(local.resolve()) if local.is_file() else None
        if known:
            return known, Evidence(local)
        if local.is_file():
            try:
                run = parse_log(local)
            except BadInput:
                continue
            digest = data_pipeline_hash(run.source) if run.source else None
            if digest:
                return digest, source_evidence(run, data_pipeline_line(run.source or ""))
    return None, None
