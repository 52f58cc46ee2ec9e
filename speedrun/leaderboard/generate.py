"""The whole leaderboard update: records -> verifications -> figures -> tables and chart -> new file texts.

`generate` reads and computes everything before anything is written, so bad input leaves every file
untouched; `write` then replaces the stale ones atomically (the README, the chart, and the record.toml
files whose [verified] block the logs at hand change), and `diff` is what `--check` prints. Rows whose logs
are not at hand show the figures their record.toml holds.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speedrun.errors import BadInput
from speedrun.leaderboard.chart import render_chart
from speedrun.leaderboard.figures import changes, checkout_commit, figures_of, render_block, with_block
from speedrun.leaderboard.render import CHART_BLOCK, render_table, splice, template_environment
from speedrun.leaderboard.verify import JudgeFunction, Verification, verify_records
from speedrun.store import Record, VerifiedFigures, default_records_dir, load_records
from speedrun.tracks import TRACK_NAMES, load_track

DEFAULT_CHART = Path("docs") / "record-history.svg"


@dataclass(frozen=True)
class Leaderboard:
    """The files as they are and as they would be generated."""

    readme: Path
    readme_old: str
    readme_new: str
    chart: Path
    chart_old: str | None  # None when the chart file does not exist yet
    chart_new: str
    records: tuple[Record, ...]
    verifications: dict[Record, Verification]  # the rows whose logs were at hand and judged now
    figures: dict[Record, VerifiedFigures] = field(default_factory=dict)  # what each row shows: now, or recorded
    record_files: dict[Path, tuple[str, str]] = field(default_factory=dict)  # record.toml: (as is, generated)
    log_changes: tuple[str, ...] = ()  # logs whose sha256 differs from the one recorded, and changed figures

    @property
    def stale(self) -> list[Path]:
        """The files whose content differs from what would be generated."""
        changed = [self.readme] if self.readme_old != self.readme_new else []
        changed += [self.chart] if self.chart_old != self.chart_new else []
        return changed + [path for path, (old, new) in sorted(self.record_files.items()) if old != new]

    def generated(self, path: Path) -> str:
        if path == self.readme:
            return self.readme_new
        if path == self.chart:
            return self.chart_new
        return self.record_files[path][1]


def generate(
    records_dir: Path | None,
    readme: Path,
    *,
    chart: Path | None = None,
    logs_dir: Path | None = None,
    templates: Path | None = None,
    judge: JudgeFunction | None = None,
) -> Leaderboard:
    """Compute the README and chart that `records_dir` (with the logs it or `logs_dir` holds) give."""
    if not readme.exists():
        raise BadInput(
            readme,
            f"README file does not exist in {readme.resolve().parent}: run `speedrun leaderboard` from the "
            "repository root, or pass --readme with the README's path",
        )
    readme_old = _read(readme, "README")
    chart = chart if chart is not None else readme.parent / DEFAULT_CHART
    chart_old = _read(chart, "chart") if chart.exists() else None
    if logs_dir is not None and not logs_dir.is_dir():
        raise BadInput(logs_dir, "--logs folder does not exist")
    records = load_records(records_dir)
    if not records:
        raise BadInput(
            records_dir or default_records_dir(),
            "no record.toml under <track>/<folder>/: add one with `speedrun records new`, or pass another --records",
        )
    verifications = verify_records(records, logs_dir, records_dir=records_dir, judge=judge)
    commit = checkout_commit(logs_dir) if logs_dir is not None else None
    figures = {r: r.verified for r in records if r.verified is not None}
    record_files: dict[Path, tuple[str, str]] = {}
    log_changes: list[str] = []
    for record, verification in verifications.items():
        now = figures_of(record, verification, commit)
        figures[record] = now
        log_changes += changes(record, record.verified, now)
        old = _read(record.path, "record.toml")
        record_files[record.path] = (old, with_block(old, render_block(now), record.path))
    env = template_environment(templates)
    tracks = [load_track(name, records_dir or default_records_dir()) for name in TRACK_NAMES]
    readme_dir = readme.resolve().parent
    blocks = {
        track.name: render_table(env, track, [r for r in records if r.track == track.name], figures, readme_dir)
        for track in tracks
    }
    chart_link = Path(os.path.relpath(chart.resolve(), readme_dir)).as_posix()
    blocks[CHART_BLOCK] = env.get_template("chart.md.j2").render(chart_link=chart_link, tracks=tracks)
    return Leaderboard(
        readme=readme,
        readme_old=readme_old,
        readme_new=splice(readme_old, blocks, readme),
        chart=chart,
        chart_old=chart_old,
        chart_new=render_chart(env, tracks, records),
        records=tuple(records),
        verifications=verifications,
        figures=figures,
        record_files=record_files,
        log_changes=tuple(log_changes),
    )


def write(board: Leaderboard) -> list[Path]:
    """Write the stale files (each atomically); return them."""
    stale = board.stale
    for path in stale:
        _write_atomically(path, board.generated(path))
    return stale


def diff(board: Leaderboard, max_lines: int = 40) -> str:
    """A unified diff of the stale files, cut to `max_lines` lines."""
    lines: list[str] = []
    pairs = [(board.readme, board.readme_old, board.readme_new), (board.chart, board.chart_old or "", board.chart_new)]
    pairs += [(path, old, new) for path, (old, new) in sorted(board.record_files.items())]
    for path, old, new in pairs:
        if old != new:
            lines += difflib.unified_diff(
                old.splitlines(), new.splitlines(), f"{path} (as is)", f"{path} (generated)", n=1, lineterm=""
            )
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... {len(lines) - max_lines} more diff lines"]
    return "\n".join(lines)


def to_json(board: Leaderboard) -> dict[str, Any]:
    """The rows and their verifications, for --json."""
    rows = []
    for record in board.records:
        v = board.verifications.get(record)
        f = board.figures.get(record)
        rows.append(
            {
                "track": record.track,
                "number": record.number,
                "retimes": record.retimes,
                "time": record.time_text,
                "time_seconds": record.time_seconds,
                "date": record.date.isoformat() if record.date else None,
                "description": record.description,
                "folder": str(record.folder),
                "verified": None if f is None else {**asdict(f), "sha256": dict(f.sha256), "judged_now": v is not None},
                "judged_now": None
                if v is None
                else {
                    "judged": str(v.judged),
                    "linked_log": str(v.linked_log),
                    "n": v.n,
                    "mean_val_loss": v.mean_val_loss,
                    "p_value": v.p_value,
                    "verdict": v.verdict,
                    "log_time_s": v.log_time_s,
                    "mean_time_s": v.mean_time_s,
                    "normalised_time_s": v.normalised_time_s,
                    "time_agrees_with": v.time_source,
                },
            }
        )
    return {
        "readme": str(board.readme),
        "chart": str(board.chart),
        "stale": [str(p) for p in board.stale],
        "log_changes": list(board.log_changes),
        "rows": rows,
    }


def _read(path: Path, what: str) -> str:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        raise BadInput(path, f"{what} file does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(path, f"cannot read {what}: {e}") from None


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
