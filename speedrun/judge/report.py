"""What the judge prints: a report for people (each file:line whole), JSON for machines, and Markdown for PRs.

The JSON layout is stable (`JSON_VERSION` changes when it does not stay backward compatible):
a list with one object per judged group of runs (a path, or each group of a record folder), each
    {"path", "track", "track_reason", "verdict": "pass" | "fail" | "review",
     "role": "candidate" | "other", "role_reason", "rules_as_of": {"date", "source"} | null,
     "runs": [{"file", "steps", "final_val_loss", "train_time_ms", "evidence", "counted"}],
     "incomplete": [{"file", "why", "evidence"}],
     "summary": {"n", "mean_val_loss", "std_val_loss", "p_value", "mean_train_time_s", "median_train_time_s",
                 "std_train_time_s", "min_train_time_s", "max_train_time_s", "runs_needed"},
     "checks": [{"rule", "rule_id", "status": "pass" | "fail" | "warn" | "unchecked" | "n/a", "detail",
                 "evidence": ["file:line"], "figures": {...},
                 "waived": {"reason", "link", "systems_only", "holds", "evidence"} | null}],
     "baseline": the same object for the baseline group, or null, "json_version": 2}
A path that could not be judged (in a call with several paths) is {"path", "bad_input", "json_version"}.
Only candidates decide; an "other" group's verdict is what it would be on its own. Undefined figures are null.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speedrun.console import printable, wrap
from speedrun.judge.rules import finite_losses, format_p, independent_runs, why_incomplete
from speedrun.judge.rules.complete_runs import incomplete_evidence
from speedrun.judge.runlog import RunLog
from speedrun.judge.verdict import SIGNIFICANCE, Check, Judgement, Status, Verdict

if TYPE_CHECKING:
    from rich.console import Console

JSON_VERSION = 2
STATUS_STYLE = {
    Status.PASS: "green",
    Status.FAIL: "bold red",
    Status.WARN: "yellow",
    Status.UNCHECKED: "yellow",
    Status.NOT_APPLICABLE: "dim",
}
VERDICT_STYLE = {Verdict.PASS: "green", Verdict.FAIL: "bold red", Verdict.REVIEW: "bold yellow"}


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and inf become null, paths and enums become strings, containers recurse."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def _counted_ids(judgement: Judgement) -> set[int]:
    return {id(r) for r in independent_runs(judgement.runs)}


def status_text(j: Judgement, c: Check) -> str:
    """A check's status as the reports show it: `fail, waived` when a waiver covers it."""
    used = j.waiver_of(c)
    if used is None:
        return c.status.value
    return f"{c.status.value}, waived" if used.holds else f"{c.status.value}, waiver disputed"


def detail_text(j: Judgement, c: Check) -> str:
    """A check's detail, followed by the waiver that covers it and the evidence for it."""
    used = j.waiver_of(c)
    if used is None:
        return c.detail
    evidence = f"; {used.evidence}" if used.evidence else ""
    return f"{c.detail} — waived: {used.waiver.reason} ({used.waiver.link}){evidence}"


def verdict_text(j: Judgement) -> str:
    """`pass`, `pass (waived: reason)`, `review`, `fail`: what a maintainer reads first."""
    reasons = [u.waiver.reason for c in j.checks if (u := j.waiver_of(c)) is not None and u.holds]
    if j.verdict is Verdict.PASS and reasons:
        return f"pass (waived: {'; '.join(dict.fromkeys(reasons))})"
    return j.verdict.value


def review_reasons(j: Judgement) -> list[str]:
    """Why a judgement needs a review: each unconfirmed check, and each waiver its evidence disputes."""
    found = []
    for c in j.checks:
        used = j.waiver_of(c)
        if used is not None and not used.holds:
            found.append(f"{c.rule}: the waiver ({used.waiver.reason}) is disputed: {used.evidence}")
        elif used is None and c.status in (Status.WARN, Status.UNCHECKED):
            found.append(f"{c.rule}: {c.detail}")
    return found


def run_row(run: RunLog, counted: bool = True) -> dict[str, Any]:
    final = run.final
    return {
        "file": str(run.path),
        "steps": final.step if final else None,
        "final_val_loss": _clean(run.final_val_loss),
        "train_time_ms": _clean(run.train_time_ms),
        "evidence": str(run.at(final.line)) if final else str(run.path),
        "counted": counted,
    }


def _check_dict(j: Judgement, c: Check) -> dict[str, Any]:
    used = j.waiver_of(c)
    waived = None
    if used is not None:
        w = used.waiver
        waived = {
            "reason": w.reason,
            "link": w.link,
            "systems_only": w.systems_only,
            "holds": used.holds,
            "evidence": used.evidence,
        }
    return {
        "rule": c.rule,
        "rule_id": c.rule_id,
        "status": c.status.value,
        "detail": c.detail,
        "evidence": [str(e) for e in c.evidence],
        "figures": _clean(c.figures),
        "waived": waived,
    }


def judgement_dict(judgement: Judgement) -> dict[str, Any]:
    counted = _counted_ids(judgement)
    when = judgement.rules_date
    return {
        "path": str(judgement.path),
        "track": judgement.track,
        "track_reason": judgement.track_reason,
        "verdict": judgement.verdict.value,
        "role": judgement.role.value,
        "role_reason": judgement.role_reason,
        "rules_as_of": {"date": when.day.isoformat(), "source": when.source} if when else None,
        "runs": [run_row(r, id(r) in counted) for r in judgement.runs],
        "incomplete": [
            {"file": str(r.path), "why": why_incomplete(r), "evidence": str(incomplete_evidence(r))}
            for r in judgement.incomplete
        ],
        "summary": _clean(asdict(judgement.summary)),
        "checks": [_check_dict(judgement, c) for c in judgement.checks],
        "baseline": judgement_dict(judgement.baseline) if judgement.baseline else None,
        "json_version": JSON_VERSION,
    }


def to_json(judgements: Iterable[Judgement]) -> list[dict[str, Any]]:
    """The --json document: one object per judged group, in the order judged."""
    return [judgement_dict(j) for j in judgements]


def bad_input_dict(path: Path, problem: str) -> dict[str, Any]:
    """The --json entry of a path that could not be judged, in a call with several paths."""
    return {"path": str(path), "bad_input": problem, "json_version": JSON_VERSION}


# --- Markdown --------------------------------------------------------------------------------------------------


def _num(value: float | None, digits: int) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}" if math.isfinite(value) else "n/a"


def _title(path: Path) -> str:
    """A record folder and its group (`2026-05-20_BigramsSignTrick/pr299`), or the name alone."""
    return "/".join(part for part in path.parts[-2:] if part not in ("/", ".")) or str(path)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_one(j: Judgement, records_dir: Path | None) -> list[str]:
    from speedrun.judge import stats
    from speedrun.tracks import load_track

    track = load_track(j.track, records_dir)
    s = j.summary
    counted = _counted_ids(j)
    when = f" Rules in force on {j.rules_date}." if j.rules_date else ""
    lines = [
        f"# {_title(j.path)}: {j.verdict.value.upper()}{verdict_text(j)[len(j.verdict.value) :]}",
        "",
        f"Track: {track.title} (`{j.track}`, chosen by {j.track_reason}), target val loss {track.target_val_loss}."
        + when,
        "",
        "| Run | steps | val_loss | train_time | line |",
        "|---|---|---|---|---|",
    ]
    for run in j.runs:
        final = run.final
        mark = "" if id(run) in counted else " (copy, not counted)"
        ms = run.train_time_ms
        time = f"{ms:.0f}ms" if ms is not None else "n/a"
        where = f"`{run.at(final.line)}`" if final else f"`{run.path}`"
        lines.append(
            f"| {_cell(run.path.name)}{mark} | {final.step if final else 'n/a'} | {_num(run.final_val_loss, 4)} "
            f"| {time} | {_cell(where)} |"
        )
    for run in j.incomplete:
        lines.append(
            f"| {_cell(run.path.name)} (incomplete, not counted) | n/a | n/a | n/a "
            f"| `{_cell(str(incomplete_evidence(run)))}`: {_cell(why_incomplete(run) or '')} |"
        )
    losses = [v for r, v in finite_losses(j.runs) if id(r) in counted]
    lines += ["", "## Summary", "", "|  | mean | std | median | min | max |", "|---|---|---|---|---|---|"]
    if losses:
        d = stats.describe(losses)
        lines.append(f"| val_loss | {d.mean:.5f} | {d.std:.5f} | {d.median:.4f} | {d.min:.4f} | {d.max:.4f} |")
    if s.mean_train_time_s is not None:
        lines.append(
            f"| train_time (s) | {_num(s.mean_train_time_s, 3)} | {_num(s.std_train_time_s, 3)} "
            f"| {_num(s.median_train_time_s, 3)} | {_num(s.min_train_time_s, 3)} | {_num(s.max_train_time_s, 3)} |"
        )
    needed = f"; runs needed for p < {SIGNIFICANCE} at this mean and std: {s.runs_needed}" if s.runs_needed else ""
    p = format_p(s.p_value)
    lines += ["", f"p(val_loss < {track.target_val_loss}) = **{p}** (one-sided t-test, n={s.n}){needed}"]
    if j.baseline is not None:
        b = j.baseline.summary
        lines += [
            "",
            f"## vs baseline (`{j.baseline.path}`)",
            "",
            f"|  | baseline (n={b.n}) | this (n={s.n}) | delta |",
            "|---|---|---|---|",
            f"| val_loss mean | {_num(b.mean_val_loss, 5)} | {_num(s.mean_val_loss, 5)} "
            f"| {_signed(s.mean_val_loss - b.mean_val_loss, 5)} |",
        ]
        if s.mean_train_time_s is not None and b.mean_train_time_s is not None:
            lines.append(
                f"| train_time mean (s) | {b.mean_train_time_s:.3f} | {s.mean_train_time_s:.3f} "
                f"| **{s.mean_train_time_s - b.mean_train_time_s:+.3f}** |"
            )
    lines += ["", "## Checks", "", "| rule | status | detail |", "|---|---|---|"]
    lines += [f"| {c.rule_id} {c.rule} | {status_text(j, c)} | {_cell(detail_text(j, c))} |" for c in j.checks]
    return lines


def _markdown_others(others: Sequence[Judgement]) -> list[str]:
    lines = [
        "# Not the submission",
        "",
        "These groups never decide the verdict: other baselines, ablations, earlier versions, tests.",
        "",
        "| group | what it is | n | mean val_loss | p | mean train_time |",
        "|---|---|---|---|---|---|",
    ]
    for j in others:
        s = j.summary
        time = f"{s.mean_train_time_s:.3f}s" if s.mean_train_time_s is not None else "n/a"
        lines.append(
            f"| `{_cell(str(j.path))}` | {_cell(j.role_reason)} | {s.n} | {_num(s.mean_val_loss, 4)} "
            f"| {format_p(s.p_value)} | {time} |"
        )
    return lines


def to_markdown(judgements: Sequence[Judgement], records_dir: Path | None = None) -> str:
    """A statistics.md-style summary of each judgement, ready to paste into a pull request. `records_dir`
    is the one the judgements were made with, so the stated target is the one they were judged against."""
    parts: list[str] = []
    for j in judgements:
        if not j.decides:
            continue
        if parts:
            parts.append("")
        parts.extend(_markdown_one(j, records_dir))
    others = [j for j in judgements if not j.decides]
    if others:
        parts += ["", *_markdown_others(others)] if parts else _markdown_others(others)
    return "\n".join(parts) + "\n"


# --- the terminal report -------------------------------------------------------------------------------------
#
# Lines rather than rich tables: a table folds a long cell wherever its column ends, and a file:line broken across
# two lines can be neither grepped nor clicked. Here text breaks only at spaces, a continuation line hangs indented
# under the line it continues (so a report reads as units: a line and the lines indented below it), and a word
# longer than the line, such as a path, keeps a line of its own, whole, for the terminal to soft-wrap.


def _line(console: Console, text: str, style: str | None = None, spans: Sequence[tuple[int, int, str]] = ()) -> None:
    """One line as it is: rich neither wraps nor crops it (soft wrap), nor reads it as markup."""
    from rich.text import Text

    line = Text(text, style=style or "")
    for start, end, span_style in spans:
        line.stylize(span_style, start, end)
    console.print(line, soft_wrap=True)


def _final_line(run: RunLog) -> str:
    return printable(str(run.at(run.final.line)) if run.final else str(run.path))


def _run_lines(
    runs: Sequence[RunLog], incomplete: Sequence[RunLog], counted: set[int], steps_width: int, width: int
) -> list[tuple[str, str | None]]:
    """(line, style) for each run, the file:line of its final val line last, where no column can cut it; an
    incomplete run's last line, and below it why it is left out."""
    lines: list[tuple[str, str | None]] = []
    for run in runs:
        ms = run.train_time_ms
        time = f"{ms / 1000:.3f}s" if ms is not None else "n/a"
        steps = str(run.final.step) if run.final else "n/a"
        copy = "" if id(run) in counted else "  (a copy: not counted)"
        figures = f"{steps:>{steps_width}}  {_num(run.final_val_loss, 4):>8}  {time:>10}"
        lines.append((f"{figures}  {_final_line(run)}{copy}", None if not copy else "dim strike"))
    for run in incomplete:
        figures = f"{'-':>{steps_width}}  {'-':>8}  {'-':>10}"
        why = printable(why_incomplete(run) or "")
        lines.append((f"{figures}  {printable(str(incomplete_evidence(run)))}", "dim"))
        lines += [(line, "dim") for line in wrap(f"incomplete, not counted: {why}", width, len(figures) + 2)]
    return lines


def _steps_width(*groups: Sequence[RunLog]) -> int:
    return max([len("steps"), *(len(str(r.final.step)) for runs in groups for r in runs if r.final)])


def _print_judgement(j: Judgement, console: Console) -> None:
    width = console.width
    s = j.summary
    when = f"  rules of {j.rules_date}" if j.rules_date else ""
    verdict = printable(j.verdict.value.upper() + verdict_text(j)[len(j.verdict.value) :])
    head = wrap(f"{verdict}  {printable(str(j.path))}  track {j.track} ({printable(j.track_reason)}){when}", width)
    _line(console, head[0], spans=[(0, len(verdict), VERDICT_STYLE[j.verdict])])
    for line in head[1:]:
        _line(console, line)

    baseline = j.baseline
    steps_width = _steps_width(j.runs, j.incomplete, *((baseline.runs, baseline.incomplete) if baseline else ()))
    _line(console, f"{'steps':>{steps_width}}  {'val_loss':>8}  {'train_time':>10}  run (final val line)", "bold")
    for line, style in _run_lines(j.runs, j.incomplete, _counted_ids(j), steps_width, width):
        _line(console, line, style)
    time = f", time mean {s.mean_train_time_s:.3f}s" if s.mean_train_time_s is not None else ""
    loss = f"mean val loss {_num(s.mean_val_loss, 4)}  std {_num(s.std_val_loss, 4)}"
    _line(console, f"n={s.n}  {loss}  p={format_p(s.p_value)}{time}")
    if baseline is not None:
        b = baseline.summary
        base_time = f", time mean {b.mean_train_time_s:.3f}s" if b.mean_train_time_s is not None else ""
        about = f"baseline {printable(str(baseline.path))} ({printable(baseline.role_reason)}): n={b.n}{base_time}"
        for line in wrap(about, width):
            _line(console, line)
        for line, style in _run_lines(baseline.runs, baseline.incomplete, _counted_ids(baseline), steps_width, width):
            _line(console, line, style)

    # The checks: rule, status, then the detail, hanging under its own column; below it, the lines the check
    # cites, unless they are just the final val line of every run listed above.
    shown = {str(r.at(r.final.line)) for r in j.runs if r.final}
    statuses = [status_text(j, c) for c in j.checks]
    rule_width = max([len("rule"), *(len(f"{c.rule_id} {c.rule}") for c in j.checks)])
    status_width = max([len("status"), *map(len, statuses)])
    indent = rule_width + status_width + 4
    _line(console, f"{'rule':<{rule_width}}  {'status':<{status_width}}  detail", "bold")
    for c, status in zip(j.checks, statuses, strict=True):
        text = f"{f'{c.rule_id} {c.rule}':<{rule_width}}  {status:<{status_width}}  {printable(detail_text(j, c))}"
        lines = wrap(text, width, hang=indent)
        start = rule_width + 2
        _line(console, lines[0], spans=[(start, start + len(status), STATUS_STYLE[c.status])])
        for line in lines[1:]:
            _line(console, line)
        cited = [str(e) for e in c.evidence]
        if cited and set(cited) != shown:
            for where in dict.fromkeys(cited):
                _line(console, f"{' ' * indent}at {printable(where)}", "dim")
    console.print()


def print_table(judgements: Sequence[Judgement], console: Console) -> None:
    """One block per candidate: the headline, the runs (and the baseline's), each with the file:line of its final
    val line, the statistics, and every check with its status, detail and the lines it cites; then the groups that
    are not the submission. Every path is printed whole on one line, at any console width."""
    for j in judgements:
        if j.decides:
            _print_judgement(j, console)
    others = [j for j in judgements if not j.decides]
    if not others:
        return
    _line(console, "Not the submission (never decides the verdict):", "bold")
    for j in others:
        s = j.summary
        time = f"  mean time {s.mean_train_time_s:.3f}s" if s.mean_train_time_s is not None else ""
        figures = f"n={s.n}  mean val_loss {_num(s.mean_val_loss, 4)}  p={format_p(s.p_value)}{time}"
        _line(console, printable(str(j.path)))
        for line in wrap(f"{printable(j.role_reason)}: {figures}", console.width, indent=2):
            _line(console, line)
    console.print()
