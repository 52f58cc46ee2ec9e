"""Judge a path: find its logs, group them, parse them, pick the track, the record and its prior, give each
group its role, apply the rules in force on the record's date.

`judge_path` is the entry point the CLI, the leaderboard and CI call. It returns one `Judgement` per group
that is not the baseline: the candidates, whose verdicts decide, then the other groups, reported apart.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import replace
from pathlib import Path

from speedrun.errors import BadInput
from speedrun.judge import stats
from speedrun.judge.context import RecordContext, record_context
from speedrun.judge.discover import (
    BASELINE_NAME,
    TOP_LEVEL_GROUP,
    Group,
    assign_roles,
    find_run_logs,
    model_dims,
    pick_baseline,
    split_groups,
)
from speedrun.judge.notes import StatedStatistic, stated_p_values
from speedrun.judge.parse import collector_paused, parse_log
from speedrun.judge.rules import (
    PriorRecord,
    RuleInput,
    apply_rules,
    check_track_rules,
    finite_losses,
    independent_runs,
    timed_runs,
    why_incomplete,
)
from speedrun.judge.runlog import RunLog
from speedrun.judge.verdict import Judgement, Role, Summary
from speedrun.store import Waiver
from speedrun.tracks import TRACK_NAMES, Track, canonical_name, load_track, track_from_path

MODEL_DIM_TRACKS = {768: "track_1_short", 1024: "track_2_medium"}


def parse_runs(logs: list[Path]) -> tuple[RunLog, ...]:
    """Parse logs, complete or not: whether a run is a result is the complete-runs rule's question."""
    runs: list[RunLog] = []
    with collector_paused():  # one garbage collection for the whole group, not one per log
        runs.extend(parse_log(log) for log in logs)
    return tuple(runs)


def truncated(run: RunLog) -> BadInput:
    """The one-line error for a run that cannot be judged because it ends before its final val line."""
    return BadInput(run.path, f"truncated log: {why_incomplete(run)}")


# --- the track ----------------------------------------------------------------------------------------------------


def _run_track(run: RunLog) -> tuple[str, str] | None:
    """The track a run's own lines name: its config's track, else its model size; with the line that says so."""
    named = run.config.get("track") if run.config else None
    if named in TRACK_NAMES:
        return str(named), f"config line {run.config_line}"
    dims = model_dims(run)
    if dims in MODEL_DIM_TRACKS:
        return MODEL_DIM_TRACKS[dims], f"model size (model_dim {dims})"
    return None


def choose_track(path: Path, runs: tuple[RunLog, ...], track: str | None) -> tuple[str, str]:
    """The track to judge against and how it was chosen: --track, else the path, else the runs' config (our
    trainer writes its track there), else the model size in the config or embedded source.

    When the logs choose, they must agree: a folder holding logs of both tracks is bad input naming both.
    """
    if track:
        return canonical_name(track), "--track"
    from_path = track_from_path(path)
    if from_path:
        return from_path, "path"
    found: dict[str, tuple[RunLog, str]] = {}
    for run in runs:
        said = _run_track(run)
        if said is not None:
            found.setdefault(said[0], (run, said[1]))
    if len(found) > 1:
        parts = " and ".join(f"{name} ({run.path.name}, {why})" for name, (run, why) in sorted(found.items()))
        raise BadInput(path, f"holds logs of two tracks: {parts}; judge them apart, or pass --track")
    if found:
        name, (_, why) = next(iter(found.items()))
        return name, why
    return TRACK_NAMES[0], "default (neither --track, the path nor the model size tells)"


# --- figures ------------------------------------------------------------------------------------------------------


def summarise(runs: tuple[RunLog, ...], target: float) -> Summary:
    """The headline figures of a group of (independent) runs."""
    losses = [v for _, v in finite_losses(runs)]
    times = [ms / 1000.0 for _, ms in timed_runs(runs)]
    loss = stats.describe(losses) if losses else None
    time = stats.describe(times) if times else None
    test = stats.loss_test(losses, target)
    return Summary(
        n=len(losses),
        mean_val_loss=loss.mean if loss else math.nan,
        std_val_loss=loss.std if loss else math.nan,
        p_value=test.p,
        mean_train_time_s=time.mean if time else None,
        median_train_time_s=time.median if time else None,
        std_train_time_s=time.std if time else None,
        min_train_time_s=time.min if time else None,
        max_train_time_s=time.max if time else None,
        runs_needed=test.runs_needed,
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
    context: RecordContext | None = None,
    role: Role = Role.CANDIDATE,
    role_reason: str = "",
    stated: tuple[StatedStatistic, ...] = (),
    waivers: tuple[Waiver, ...] = (),
) -> Judgement:
    """Apply every rule in force to one group of runs; runs that end before their final val line are set
    apart (listed, never counted)."""
    complete = tuple(r for r in runs if why_incomplete(r) is None)
    incomplete = tuple(r for r in runs if why_incomplete(r) is not None)
    independent = independent_runs(complete)
    rules_date = context.rules_date if context else None
    rule_input = RuleInput(
        track=track,
        runs=complete,
        independent=independent,
        baseline=independent_runs(baseline.runs) if baseline else None,
        prior=context.prior if context else prior,
        prior_note=context.prior_note if context else prior_note,
        is_baseline=is_baseline,
        as_of=rules_date.day if rules_date else None,
        incomplete=incomplete,
        stated=stated,
        retimes=context.retimes if context else None,
        first_of_track=context.first_of_track if context else False,
        baseline_checks=baseline.checks if baseline else (),
        known_code=context.hints.other_code if context else {},
    )
    return Judgement(
        path=path,
        track=track.name,
        track_reason=track_reason,
        runs=complete,
        summary=summarise(independent, track.target_val_loss),
        checks=apply_rules(rule_input),
        baseline=baseline,
        role=Role.BASELINE if is_baseline else role,
        role_reason=role_reason,
        incomplete=incomplete,
        waivers=context.waivers if context else waivers,
        rules_date=rules_date,
    )


# --- a path -------------------------------------------------------------------------------------------------------


def judge_path(
    path: Path,
    *,
    track: str | None = None,
    baseline: Path | None = None,
    records_dir: Path | None = None,
    as_of: datetime.date | None = None,
) -> list[Judgement]:
    """Judge a log file or a folder: one Judgement per group of runs that is not the baseline, the
    candidates first. `as_of` judges by the rules in force on that day instead of the record's date."""
    path = Path(path)
    parsed = {key: parse_runs(logs) for key, logs in split_groups(path).items()}
    all_runs = tuple(r for runs in parsed.values() for r in runs)
    track_name, track_reason = choose_track(path, all_runs, track)
    track_spec = load_track(track_name, records_dir)
    check_track_rules(track_spec)
    context = record_context(path, track_name, records_dir, as_of)
    if path.is_file():
        (run,) = all_runs
        if why_incomplete(run) is not None:
            raise truncated(run)
        groups = [Group(TOP_LEVEL_GROUP, path, all_runs)]
    else:
        hints = replace(context.hints, track_dims=MODEL_DIM_TRACKS, track=track_name, gpu_count=track_spec.gpu_count)
        groups = assign_roles(path, parsed, hints)
    groups, baseline_group = _choose_baseline(path, groups, baseline)
    for group in groups:
        if group.role is Role.CANDIDATE and not any(why_incomplete(r) is None for r in group.runs):
            raise truncated(group.runs[0])
    note_folders = [path if path.is_dir() else path.parent] + ([context.folder] if context.folder else [])
    stated = stated_p_values(note_folders)

    def judge(group: Group, base: Judgement | None = None) -> Judgement:
        is_baseline = group.role is Role.BASELINE
        return judge_runs(
            group.path,
            group.runs,
            track_spec,
            track_reason,
            baseline=base,
            is_baseline=is_baseline,
            context=context,
            role=group.role,
            role_reason=group.reason,
            stated=() if is_baseline else stated,
        )

    baseline_judgement = judge(baseline_group) if baseline_group is not None else None
    return [judge(g, baseline_judgement if g.role is Role.CANDIDATE else None) for g in groups]


def _choose_baseline(path: Path, groups: list[Group], given: Path | None) -> tuple[list[Group], Group | None]:
    """The groups other than the baseline, and the baseline: --baseline, else the folder's own, else the
    `baseline*` folder beside a sub-folder judged alone. A baseline without one complete run is no baseline."""
    if given is not None:
        given = Path(given)
        inside = next((g for g in groups if g.path.resolve() == given.resolve()), None)
        rest = [
            replace(g, role=Role.OTHER, reason=f"another baseline (--baseline {given})")
            if g.role is Role.BASELINE
            else g
            for g in groups
            if g is not inside
        ]
        if inside is not None:
            return rest, replace(inside, role=Role.BASELINE, reason="--baseline")
        return rest, Group(given.name, given, parse_runs(find_run_logs(given)), Role.BASELINE, "--baseline")
    own = next((g for g in groups if g.role is Role.BASELINE), None)
    if own is not None and not any(why_incomplete(r) is None for r in own.runs):
        groups = [
            replace(g, role=Role.OTHER, reason="a baseline without one complete run") if g is own else g for g in groups
        ]
        own = None
    if own is not None:
        return [g for g in groups if g is not own], own
    return groups, _sibling_baseline(path)


def _sibling_baseline(path: Path) -> Group | None:
    """For a record's sub-folder judged on its own (this_pr/), the record's baseline folder beside it. A record
    folder's siblings are other records (one may be named `..._Prior`), never its baseline."""
    if not path.is_dir() or BASELINE_NAME.search(path.name) or path.parent.name in TRACK_NAMES:
        return None
    siblings = {p.name: p for p in path.parent.iterdir() if p.is_dir() and BASELINE_NAME.search(p.name)}
    found: dict[str, tuple[RunLog, ...]] = {}
    for name, folder in siblings.items():
        try:
            runs = parse_runs(find_run_logs(folder))
        except BadInput:
            continue  # an empty or broken baseline beside the judged folder is not the judged folder's problem
        if any(why_incomplete(r) is None for r in runs):
            found[name] = runs
    chosen = pick_baseline(found)
    if chosen is None:
        return None
    return Group(chosen, siblings[chosen], found[chosen], Role.BASELINE, "the baseline folder beside it")


def prior_record(path: Path, track: str, records_dir: Path | None) -> tuple[PriorRecord | None, str]:
    """The record the judged path is measured against, and a note saying why when there is none."""
    context = record_context(Path(path), track, records_dir)
    return context.prior, context.prior_note
