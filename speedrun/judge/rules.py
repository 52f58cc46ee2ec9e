"""The rules of the speedrun, one small function each: (RuleInput) -> Check.

Every check returns pass / fail / warn / n/a with a one-line reason, and cites the log lines behind its
figures and failures as `file:line`. The rules only read parsed logs: nothing from a submission is run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import compress, count, islice, repeat
from operator import ge, is_not, itemgetter, lt

from speedrun.judge import stats
from speedrun.judge.compile_flags import ALLOWED, SETTING, find_compile_flags
from speedrun.judge.pipeline import data_pipeline_hash, data_pipeline_line, is_trainer_source
from speedrun.judge.runlog import Evidence, RunLog, StepLine
from speedrun.judge.verdict import Check, Status
from speedrun.tracks import Track

ALPHA = 0.01  # the significance level the rules ask of the loss t-test
SPEED_ALPHA = 0.05  # below this, a faster mean than the baseline is called significant
GRACE_STEPS = 10  # before record 21 the first 10 steps were untimed, and step_avg divided by step - 10
MIN_TRAJECTORY_POINTS = 3  # identical trajectories only count as copies when they have this many val points
MAX_CITED = 5  # failing checks name at most this many lines in their detail (all are in `evidence`)


# Columns of a run's steps, read with itemgetter (faster than attrgetter over thousands of StepLines).
_STEP = itemgetter(StepLine._fields.index("step"))
_TRAIN_TIME = itemgetter(StepLine._fields.index("train_time_ms"))


@dataclass(frozen=True)
class PriorRecord:
    """The record a submission is measured against, and its data-pipeline hash when its logs are at hand."""

    number: int
    time_seconds: float
    label: str  # e.g. "record 83 (2026-05-20, Sign Trick on Bigram Embed)"
    pipeline_hash: str | None = None
    pipeline_evidence: Evidence | None = None


@dataclass(frozen=True)
class RuleInput:
    """What the rules see: the runs of one judged group, the track, and what they are compared with."""

    track: Track
    runs: tuple[RunLog, ...]  # every parsed run of the group
    independent: tuple[RunLog, ...]  # the same runs with copies counted once
    baseline: tuple[RunLog, ...] | None = None  # the prior record re-run on the same hardware
    prior: PriorRecord | None = None
    prior_note: str = ""  # why there is no prior record, when there is none
    is_baseline: bool = False  # the group being judged is itself a baseline


def _seconds(ms: float) -> float:
    return ms / 1000.0


def format_p(p: float | None) -> str:
    """A p-value as every report prints it: 4 decimals, tiny ones as 1.2e-05, n/a when undefined."""
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def _cite(evidence: Iterable[Evidence]) -> str:
    cited = list(evidence)
    shown = ", ".join(map(str, cited[:MAX_CITED]))
    return shown + (f" and {len(cited) - MAX_CITED} more" if len(cited) > MAX_CITED else "")


def source_evidence(run: RunLog, source_line: int) -> Evidence:
    """A line of the embedded source as a line of the log file (late-2024 logs open with a `=` line first)."""
    if not run.source or source_line <= 0:
        return Evidence(run.path)
    first_file_line = run.source_lines - run.source.count("\n") + 1
    return run.at(source_line + first_file_line - 1)


def final_evidence(run: RunLog) -> Evidence:
    final = run.final
    return run.at(final.line) if final else Evidence(run.path)


def finite_losses(runs: Iterable[RunLog]) -> list[tuple[RunLog, float]]:
    pairs = [(r, r.final_val_loss) for r in runs]
    return [(r, v) for r, v in pairs if v is not None and math.isfinite(v)]


def timed_runs(runs: Iterable[RunLog]) -> list[tuple[RunLog, float]]:
    pairs = [(r, r.train_time_ms) for r in runs]
    return [(r, ms) for r, ms in pairs if ms is not None and math.isfinite(ms)]


# --- rule 2: the loss ------------------------------------------------------------------------------------------


def check_loss(ri: RuleInput) -> Check:
    """One-sided one-sample t-test that the mean final val loss is below the target, at p < 0.01."""
    target = ri.track.target_val_loss
    bad = [r for r in ri.independent if (v := r.final_val_loss) is not None and not math.isfinite(v)]
    losses = finite_losses(ri.independent)
    evidence = tuple(final_evidence(r) for r, _ in losses)
    if bad:
        cited = [final_evidence(r) for r in bad]
        return Check("loss", Status.FAIL, f"final val loss is {bad[0].final_val_loss} at {_cite(cited)}", tuple(cited))
    if not losses:
        return Check("loss", Status.FAIL, "no run has a final val loss", ())
    values = [v for _, v in losses]
    d = stats.describe(values)
    p = stats.one_sided_ttest(values, target)
    needed = stats.runs_needed(d.mean, d.std, target, ALPHA) if d.n >= 2 else None
    figures = {"n": d.n, "mean": d.mean, "std": d.std, "p_value": p, "target": target, "runs_needed": needed}
    needed_text = f"{needed} runs needed at this mean and std" if needed else "no number of runs reaches p < 0.01"
    head = f"n={d.n} mean={d.mean:.4f} std={d.std:.4f} vs target {target}"
    if p is None:
        return Check("loss", Status.FAIL, f"{head}: one run cannot give a p-value; {needed_text}", evidence, figures)
    if p < ALPHA:
        return Check("loss", Status.PASS, f"{head}: p={format_p(p)} < {ALPHA} ({needed_text})", evidence, figures)
    return Check("loss", Status.FAIL, f"{head}: p={format_p(p)} is not below {ALPHA}; {needed_text}", evidence, figures)


# --- timing ----------------------------------------------------------------------------------------------------


def _step_avg_divisor(run: RunLog) -> int | None:
    """Which timing convention a run uses, read off its final val line: step, or step - 10 (grace steps)."""
    final = run.final
    if final is None or final.train_time_ms is None or final.step_avg_ms is None:
        return None
    for offset in (0, GRACE_STEPS):
        k = final.step - offset
        if k > 0 and math.isfinite(final.step_avg_ms) and abs(final.train_time_ms / k - final.step_avg_ms) <= _tol(k):
            return offset
    return None


def _tol(k: int) -> float:
    # step_avg is printed to 0.01 ms and train_time to 1 ms: allow both roundings.
    return 0.0051 + 0.51 / k + 1e-9


def timing_problems(run: RunLog) -> list[tuple[Evidence, str]]:
    """Every way a run's timing lines disagree with themselves; empty when they are consistent."""
    problems: list[tuple[Evidence, str]] = []
    final = run.final
    last = run.steps[-1] if run.steps else None
    if final is None:
        return [(Evidence(run.path), "no val loss in the log")]
    if last is not None and (last.step > final.step or (final.total_steps and final.step < final.total_steps)):
        shown = max(last.step, final.step)
        total = final.total_steps or last.total_steps
        problems.append((run.at(last.line), f"last val loss at step {final.step} but the run reached {shown}/{total}"))
    offset = _step_avg_divisor(run)
    # With the grace steps, the clock restarts once they are over: it only has to grow from there.
    first_timed = GRACE_STEPS + 1 if offset == GRACE_STEPS else 0
    backwards = _first_time_backwards(run.steps, first_timed)
    if backwards is not None:
        problems.append((run.at(backwards), "train_time goes backwards"))
    if final.train_time_ms is not None and final.step_avg_ms is not None and offset is None:
        problems.append((run.at(final.line), "step_avg does not equal train_time / steps"))
    elif offset is not None:
        for s in run.val_steps:
            k = s.step - offset
            if k <= 0 or s.train_time_ms is None or s.step_avg_ms is None or s.train_time_ms == 0:
                continue
            if not math.isfinite(s.step_avg_ms) or abs(s.train_time_ms / k - s.step_avg_ms) > _tol(k):
                problems.append((run.at(s.line), "step_avg does not equal train_time / steps"))
                break
    return problems


def _first_time_backwards(steps: tuple[StepLine, ...], first_timed: int) -> int | None:
    """The line of the first step (from step `first_timed` on) whose train_time is below the one before, if any.

    Column by column with `map` and `compress`, so that the loops over a run's thousands of steps stay in C.
    """
    timed: Sequence[StepLine] = steps
    if first_timed > 0:  # step numbers are never negative, so 0 keeps every step
        timed = list(compress(steps, map(ge, map(_STEP, steps), repeat(first_timed))))
    times = list(map(_TRAIN_TIME, timed))
    has_time = list(map(is_not, times, repeat(None)))
    if not all(has_time):
        timed, times = list(compress(timed, has_time)), list(compress(times, has_time))
    goes_back = map(lt, islice(times, 1, None), times)
    first = next(compress(count(1), goes_back), None)
    return None if first is None else timed[first].line


def check_timing(ri: RuleInput) -> Check:
    """train_time and step_avg agree with the step count, times increase, the final step has a val loss."""
    timed = timed_runs(ri.independent)
    problems = [(ev, why) for run in ri.runs for ev, why in timing_problems(run)]
    if not timed and not problems:
        return Check("timing", Status.NOT_APPLICABLE, "the logs carry no train_time (llm.c format)")
    figures: dict[str, float | int] = {}
    summary = ""
    if timed:
        d = stats.describe([_seconds(ms) for _, ms in timed])
        figures = {"n": d.n, "mean_s": d.mean, "median_s": d.median, "std_s": d.std, "min_s": d.min, "max_s": d.max}
        summary = f"time mean {d.mean:.3f}s median {d.median:.3f}s std {d.std:.3f}s range {d.min:.3f}-{d.max:.3f}s"
    evidence = tuple(final_evidence(r) for r, _ in timed)
    if problems:
        cited = tuple(ev for ev, _ in problems)
        detail = f"{problems[0][1]} at {problems[0][0]}" + (
            f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        )
        return Check("timing", Status.FAIL, f"{detail}; {summary}".rstrip("; "), cited, figures)
    return Check("timing", Status.PASS, f"{summary}; step_avg and train_time consistent", evidence, figures)


# --- rule 4: speed ---------------------------------------------------------------------------------------------


def check_speed(ri: RuleInput) -> Check:
    """Faster than the prior record: against a same-hardware baseline when given, else the published time."""
    if ri.is_baseline:
        return Check("speed", Status.NOT_APPLICABLE, "this group is the baseline")
    timed = timed_runs(ri.independent)
    if not timed:
        return Check("speed", Status.NOT_APPLICABLE, "no train_time to compare")
    times = [_seconds(ms) for _, ms in timed]
    mean = math.fsum(times) / len(times)
    evidence = tuple(final_evidence(r) for r, _ in timed)
    if ri.baseline:
        return _speed_against_baseline(ri, times, mean, evidence)
    if ri.prior is None:
        return Check(
            "speed", Status.NOT_APPLICABLE, f"no record to compare with{': ' + ri.prior_note if ri.prior_note else ''}"
        )
    figures = {"mean_s": mean, "prior_record": ri.prior.number, "prior_time_s": ri.prior.time_seconds}
    if mean < ri.prior.time_seconds:
        detail = (
            f"mean {mean:.3f}s beats {ri.prior.label} at {ri.prior.time_seconds:.3f}s (published time, not re-run here)"
        )
        return Check("speed", Status.PASS, detail, evidence, figures)
    detail = (
        f"mean {mean:.3f}s is not below {ri.prior.label} at {ri.prior.time_seconds:.3f}s; "
        "if the hardware differs, re-run the prior record on it and pass --baseline"
    )
    return Check("speed", Status.WARN, detail, evidence, figures)


def _speed_against_baseline(ri: RuleInput, times: list[float], mean: float, evidence: tuple[Evidence, ...]) -> Check:
    base_times = [_seconds(ms) for _, ms in timed_runs(ri.baseline or ())]
    if not base_times:
        return Check("speed", Status.NOT_APPLICABLE, "the baseline has no train_time")
    base_mean = math.fsum(base_times) / len(base_times)
    time_test = stats.welch(times, base_times)
    loss_test = stats.welch(
        [v for _, v in finite_losses(ri.independent)] or [math.nan],
        [v for _, v in finite_losses(ri.baseline or ())] or [math.nan],
    )
    speedup = base_mean / mean
    figures: dict[str, float | int | None] = {
        "mean_s": mean,
        "baseline_mean_s": base_mean,
        "speedup": speedup,
        "time_welch_p": _finite_or_none(time_test.p),
        "loss_welch_p": _finite_or_none(loss_test.p),
        "loss_difference": _finite_or_none(loss_test.difference),
        "normalised_time_s": None,
    }
    normalised = ""
    if ri.prior is not None:
        value = stats.normalised_time(ri.prior.time_seconds, mean, base_mean)
        figures["normalised_time_s"] = value
        figures["prior_record"] = ri.prior.number
        normalised = f"; normalised to {ri.prior.label}: {value:.3f}s"
    head = (
        f"mean {mean:.3f}s vs baseline {base_mean:.3f}s "
        f"({speedup:.4f}x, Welch p={format_p(time_test.p)}); "
        f"loss Δ {loss_test.difference:+.4f} (Welch p={format_p(loss_test.p)}){normalised}"
    )
    if mean >= base_mean:
        return Check("speed", Status.FAIL, f"not faster than the baseline: {head}", evidence, figures)
    if not (time_test.p < SPEED_ALPHA):
        return Check("speed", Status.WARN, f"faster, but not significantly: {head}", evidence, figures)
    return Check("speed", Status.PASS, head, evidence, figures)


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


# --- rule 3: compile flags -------------------------------------------------------------------------------------


def check_compile_flags(ri: RuleInput) -> Check:
    """No torch._inductor.config writes or torch.compile options beyond the track's allowed ones.

    Explicit settings fail; code that may reach the compiler unseen (exec, computed names, the compiler's
    config handed around, a source that is not Python) cannot be confirmed, and warns.
    """
    allowed = frozenset(ri.track.allowed_compile_options)
    with_source = [r for r in ri.runs if r.source]
    if not with_source:
        return Check("compile flags", Status.NOT_APPLICABLE, "no embedded source in the logs")
    banned: list[tuple[Evidence, str]] = []
    unconfirmed: list[tuple[Evidence, str]] = []
    permitted: set[str] = set()
    seen: set[str] = set()
    for run in with_source:
        if run.source in seen:  # identical sources (the usual case) give identical flags
            continue
        seen.add(run.source or "")
        if run.source_problem is not None:
            unconfirmed.append((run.at(run.source_problem_line), f"source not Python: {run.source_problem}"))
        for flag in find_compile_flags(run.source or "", allowed):
            if flag.kind == ALLOWED:
                permitted.add(flag.name)
            elif flag.kind == SETTING:
                banned.append((source_evidence(run, flag.line), f"{flag.how} {flag.name}"))
            elif not (flag.how == "unparseable source" and run.source_problem is not None):
                unconfirmed.append((source_evidence(run, flag.line), f"{flag.how}: {flag.name}"))
    if banned:
        names = sorted({what for _, what in banned})
        cited = tuple(ev for ev, _ in banned)
        detail = f"not allowed on the {ri.track.alias} track: {', '.join(names)} at {_cite(cited)}"
        return Check("compile flags", Status.FAIL, detail, cited, {"banned": names})
    if unconfirmed:
        names = sorted({what for _, what in unconfirmed})
        cited = tuple(ev for ev, _ in unconfirmed)
        detail = f"cannot confirm the compiler is left as the rules ask: {'; '.join(names)} at {_cite(cited)}"
        return Check("compile flags", Status.WARN, detail, cited, {"unconfirmed": names})
    extra = f" (allowed here: {', '.join(sorted(permitted))})" if permitted else ""
    return Check(
        "compile flags", Status.PASS, f"no extra compiler flags{extra}", (), {"allowed_used": sorted(permitted)}
    )


# --- rule 1: data pipeline -------------------------------------------------------------------------------------


def check_data_pipeline(ri: RuleInput) -> Check:
    """The data-loading code hashes to the track's canonical hash (our trainer) or the prior record's (upstream)."""
    hashes: dict[str, list[RunLog]] = defaultdict(list)
    for run in ri.runs:
        if run.source:
            digest = data_pipeline_hash(run.source, run.sectioned)
            if digest:
                hashes[digest].append(run)
    if not hashes:
        return Check("data pipeline", Status.NOT_APPLICABLE, "no data-loading code in the embedded source")
    evidence = tuple(
        source_evidence(rs[0], data_pipeline_line(rs[0].source or "", rs[0].sectioned)) for rs in hashes.values()
    )
    figures: dict[str, object] = {"sha256": sorted(hashes)}
    if len(hashes) > 1:
        parts = "; ".join(f"{h[:12]} in {len(rs)} run(s), e.g. {rs[0].path.name}" for h, rs in hashes.items())
        return Check(
            "data pipeline", Status.WARN, f"runs differ in their data-loading code: {parts}", evidence, figures
        )
    digest, runs = next(iter(hashes.items()))
    printed = {r.data_pipeline_sha256 for r in runs if r.data_pipeline_sha256} - {digest}
    mismatch = f"; the log prints {sorted(printed)[0][:12]}, which the judge does not trust" if printed else ""
    if any(is_trainer_source(r.source, r.sectioned) for r in runs):
        canonical = ri.track.data_pipeline_sha256
        figures["canonical"] = canonical or None
        if not canonical:
            detail = f"sha256 {digest[:12]}; no canonical hash pinned in {ri.track.path}{mismatch}"
            return Check("data pipeline", Status.WARN, detail, evidence, figures)
        if digest != canonical:
            detail = f"speedrun/trainer/data.py hashes to {digest[:12]}, the track's canonical is {canonical[:12]}"
            return Check("data pipeline", Status.FAIL, detail + mismatch, evidence, figures)
        return Check(
            "data pipeline", Status.PASS, f"canonical data pipeline ({digest[:12]}){mismatch}", evidence, figures
        )
    prior = ri.prior
    if prior is None or prior.pipeline_hash is None:
        why = ri.prior_note or "the prior record's logs are not at hand"
        return Check(
            "data pipeline", Status.NOT_APPLICABLE, f"sha256 {digest[:12]}; not compared: {why}", evidence, figures
        )
    figures["prior_sha256"] = prior.pipeline_hash
    cited = evidence + ((prior.pipeline_evidence,) if prior.pipeline_evidence else ())
    if digest == prior.pipeline_hash:
        return Check("data pipeline", Status.PASS, f"unchanged since {prior.label} ({digest[:12]})", cited, figures)
    change = f"{prior.pipeline_hash[:12]} -> {digest[:12]}"
    detail = f"data-loading code changed since {prior.label} ({change}): check the token streams are unchanged"
    return Check("data pipeline", Status.WARN, detail, cited, figures)


# --- hardware --------------------------------------------------------------------------------------------------


def check_hardware(ri: RuleInput) -> Check:
    """8x H100 expected (from the track file); anything else, or no nvidia-smi block, is a warning.

    nvidia-smi lists the machine's GPUs; where the log says how many processes trained (our trainer's
    `world_size` line), that is the count used, so 1 GPU of an 8-GPU machine is not taken for 8.
    """
    want_model, want_count = ri.track.gpu_model, ri.track.gpu_count
    found: dict[str, list[RunLog]] = defaultdict(list)
    for run in ri.runs:
        used = run.world_size or (run.gpus.count if run.gpus else 0)
        found[f"{used}x {run.gpus.model}" if run.gpus and run.gpus.count else "unknown"].append(run)
    good = [k for k in found if k != "unknown" and k.startswith(f"{want_count}x ") and want_model in k and "+" not in k]
    evidence = tuple(r.at(r.gpus.line) for rs in found.values() for r in rs[:1] if r.gpus)
    figures = {"found": {k: len(v) for k, v in found.items()}}
    if set(found) == set(good):
        return Check("hardware", Status.PASS, f"{', '.join(found)} as expected", evidence, figures)
    parts = ", ".join(f"{k} in {len(v)} run(s) (e.g. {v[0].path.name})" for k, v in found.items())
    detail = f"expected {want_count}x {want_model}, found {parts}".replace("unknown in", "no nvidia-smi block in")
    return Check("hardware", Status.WARN, detail, evidence, figures)


# --- independence ----------------------------------------------------------------------------------------------


def copies(runs: Iterable[RunLog]) -> list[list[RunLog]]:
    """Groups of runs that are one run counted several times: byte-identical logs or identical val trajectories."""
    by_bytes: dict[str, list[RunLog]] = defaultdict(list)
    for run in runs:
        by_bytes[run.sha256].append(run)
    found: list[list[RunLog]] = []
    by_trajectory: dict[tuple[tuple[int, float | None], ...], list[RunLog]] = defaultdict(list)
    for group in by_bytes.values():
        trajectory = tuple((s.step, s.val_loss) for s in group[0].val_steps)
        if len(trajectory) >= MIN_TRAJECTORY_POINTS:
            by_trajectory[trajectory].extend(group)
        elif len(group) > 1:
            found.append(group)
    return found + [group for group in by_trajectory.values() if len(group) > 1]


def independent_runs(runs: tuple[RunLog, ...]) -> tuple[RunLog, ...]:
    """The runs with each group of copies counted once (its first file kept)."""
    dropped = {id(r) for group in copies(runs) for r in group[1:]}
    return tuple(r for r in runs if id(r) not in dropped)


def check_independence(ri: RuleInput) -> Check:
    """Runs must be independent samples: copies fail, a repeated seed warns; copies count once in the stats."""
    duplicated = copies(ri.runs)
    if duplicated:
        parts = []
        cited: list[Evidence] = []
        for group in duplicated:
            same_bytes = len({r.sha256 for r in group}) == 1
            what = "byte-identical logs" if same_bytes else "identical val-loss trajectories"
            parts.append(f"{what}: {', '.join(r.path.name for r in group)}")
            cited.extend(final_evidence(r) for r in group)
        detail = f"{'; '.join(parts)} (counted once: n={len(ri.independent)} of {len(ri.runs)})"
        return Check(
            "independence",
            Status.FAIL,
            detail,
            tuple(cited),
            {"copies": [[str(r.path) for r in g] for g in duplicated]},
        )
    seeds: dict[int, list[RunLog]] = defaultdict(list)
    for run in ri.runs:
        if run.seed is not None:
            seeds[run.seed].append(run)
    repeated = {seed: rs for seed, rs in seeds.items() if len(rs) > 1}
    if repeated:
        parts = [f"seed {seed} in {', '.join(r.path.name for r in rs)}" for seed, rs in repeated.items()]
        cited = [r.at(r.seed_line) for rs in repeated.values() for r in rs]
        return Check("independence", Status.WARN, f"repeated seed: {'; '.join(parts)}", tuple(cited))
    return Check("independence", Status.PASS, f"{len(ri.runs)} distinct runs")


RULES: tuple[Callable[[RuleInput], Check], ...] = (
    check_loss,
    check_timing,
    check_speed,
    check_compile_flags,
    check_data_pipeline,
    check_hardware,
    check_independence,
)


def apply_rules(ri: RuleInput) -> tuple[Check, ...]:
    """Every rule's check, in a fixed order."""
    return tuple(rule(ri) for rule in RULES)
