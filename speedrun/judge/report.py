"""What the judge prints: a rich table for people, JSON for machines, and statistics.md-style Markdown for PRs.

The JSON layout is stable (`JSON_VERSION` changes when it does not stay backward compatible):
a list with one object per judged group of runs (a path, or each sub-folder of a record folder), each
    {"path", "track", "track_reason", "verdict": "pass" | "fail",
     "runs": [{"file", "steps", "final_val_loss", "train_time_ms", "evidence", "counted"}],
     "summary": {"n", "mean_val_loss", "std_val_loss", "p_value", "mean_train_time_s", "median_train_time_s",
                 "std_train_time_s", "min_train_time_s", "max_train_time_s", "runs_needed"},
     "checks": [{"rule", "status": "pass" | "fail" | "warn" | "n/a", "detail", "evidence": ["file:line"],
                 "figures": {...}}],
     "baseline": the same object for the baseline group, or null, "json_version": 1}
Figures that are undefined (NaN, one run's p-value) are null.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speedrun.console import printable
from speedrun.judge.rules import finite_losses, format_p, independent_runs
from speedrun.judge.runlog import RunLog
from speedrun.judge.verdict import Judgement, Status

if TYPE_CHECKING:
    from rich.console import Console

JSON_VERSION = 1
STATUS_STYLE = {Status.PASS: "green", Status.FAIL: "bold red", Status.WARN: "yellow", Status.NOT_APPLICABLE: "dim"}


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


def judgement_dict(judgement: Judgement) -> dict[str, Any]:
    counted = _counted_ids(judgement)
    return {
        "path": str(judgement.path),
        "track": judgement.track,
        "track_reason": judgement.track_reason,
        "verdict": judgement.verdict,
        "runs": [run_row(r, id(r) in counted) for r in judgement.runs],
        "summary": _clean(asdict(judgement.summary)),
        "checks": [
            {
                "rule": c.rule,
                "status": c.status.value,
                "detail": c.detail,
                "evidence": [str(e) for e in c.evidence],
                "figures": _clean(c.figures),
            }
            for c in judgement.checks
        ],
        "baseline": judgement_dict(judgement.baseline) if judgement.baseline else None,
        "json_version": JSON_VERSION,
    }


def to_json(judgements: Iterable[Judgement]) -> list[dict[str, Any]]:
    """The --json document: one object per judged group, in the order judged."""
    return [judgement_dict(j) for j in judgements]


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
    lines = [
        f"# {_title(j.path)}: {j.verdict.upper()}",
        "",
        f"Track: {track.title} (`{j.track}`, chosen by {j.track_reason}), target val loss {track.target_val_loss}.",
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
    needed = f"; runs needed for p < 0.01 at this mean and std: {s.runs_needed}" if s.runs_needed else ""
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
    lines += [f"| {c.rule} | {c.status.value} | {_cell(c.detail)} |" for c in j.checks]
    return lines


def to_markdown(judgements: Sequence[Judgement], records_dir: Path | None = None) -> str:
    """A statistics.md-style summary of each judgement, ready to paste into a pull request. `records_dir`
    is the one the judgements were made with, so the stated target is the one they were judged against."""
    parts: list[str] = []
    for j in judgements:
        if parts:
            parts.append("")
        parts.extend(_markdown_one(j, records_dir))
    return "\n".join(parts) + "\n"


# --- the terminal table ----------------------------------------------------------------------------------------


def print_table(judgements: Sequence[Judgement], console: Console) -> None:
    """One block per judgement: the headline, the runs, and the checks with their status."""
    from rich.table import Table
    from rich.text import Text

    for j in judgements:
        s = j.summary
        colour = "green" if j.verdict == "pass" else "bold red"
        head = Text.assemble(
            (j.verdict.upper(), colour),
            printable(f"  {j.path}  track {j.track} ({j.track_reason})"),
        )
        console.print(head)
        runs = Table(show_edge=False, pad_edge=False, box=None)
        for column in ("run (final val line)", "steps", "val_loss", "train_time"):
            runs.add_column(column, justify="left" if column.startswith("run") else "right", overflow="fold")
        counted = _counted_ids(j)
        for run in j.runs:
            final = run.final
            where = str(run.at(final.line)) if final else str(run.path)
            ms = run.train_time_ms
            time = f"{ms / 1000:.3f}s" if ms is not None else "n/a"
            style = None if id(run) in counted else "dim strike"
            runs.add_row(
                Text(printable(where)),
                str(final.step if final else "n/a"),
                _num(run.final_val_loss, 4),
                time,
                style=style,
            )
        console.print(runs)
        time = f", time mean {s.mean_train_time_s:.3f}s" if s.mean_train_time_s is not None else ""
        loss = f"mean val loss {_num(s.mean_val_loss, 4)}  std {_num(s.std_val_loss, 4)}"
        console.print(f"n={s.n}  {loss}  p={format_p(s.p_value)}{time}")
        checks = Table(show_header=True, header_style="bold", expand=False)
        checks.add_column("rule", no_wrap=True)
        checks.add_column("status", no_wrap=True)
        checks.add_column("detail", overflow="fold")
        for c in j.checks:
            checks.add_row(c.rule, Text(c.status.value, style=STATUS_STYLE[c.status]), Text(printable(c.detail)))
        console.print(checks)
        console.print()
