"""The record-history chart: record time against date, as an SVG drawn from computed geometry.

The geometry is computed here and drawn by `templates/chart.svg.j2`, so the chart needs no plotting library.
The first panel holds the whole history of both tracks on a log time axis. Below it, one panel per track
holds its last twelve months on a linear axis, where the records of a busy year would otherwise run
together. Each track is a step line (a record stands until the next one beats it, re-timings included)
with a point per record. The SVG paints its own background and carries light and dark colours
(`prefers-color-scheme`), so it reads the same opened on its own as inside the README.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from speedrun.store import Record
from speedrun.tracks import Track

if TYPE_CHECKING:
    import jinja2

WIDTH = 880  # GitHub's README column: the chart is shown at its own size, text at its own size
LEFT, RIGHT = 80, 170  # margins beside the plots: y labels on the left, each track's latest record on the right
HEADER = 64  # title and subtitle above the first panel
MAIN_PLOT, RECENT_PLOT = 300, 170  # plot heights
PANEL_TITLE, X_LABELS = 34, 48  # a recent panel's title above its plot; date labels below a plot
FOOTER = 40  # the x-axis title and, on a line of its own, the footnote on undated records
RECENT_DAYS = 365
_TICK_MINUTES = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)
_LINEAR_STEPS = (0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 30, 60)  # minutes between linear ticks


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str  # the hover text


@dataclass(frozen=True)
class Series:
    track: str
    title: str
    index: int  # the track's colour in the template: 0 blue, 1 orange
    path: str  # the SVG path of the step line
    points: tuple[Point, ...]
    end_label: str
    end_x: float
    end_y: float


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Panel:
    title: str  # empty for the first panel, whose title is the chart's
    left: float
    right: float
    top: float
    bottom: float
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    series: tuple[Series, ...]


def _minutes_label(minutes: float) -> str:
    if minutes < 60:
        return f"{minutes:g} min"
    return f"{minutes / 60:g} h"


class _Scale:
    """Dates -> x pixels (linear) and minutes -> y pixels (log10 or linear) for one panel."""

    def __init__(
        self, first: datetime.date, last: datetime.date, low: float, high: float, top: float, height: float, log: bool
    ) -> None:
        self.first, self.last, self.days = first, last, max((last - first).days, 1)
        self.transform: Callable[[float], float] = math.log10 if log else float
        self.low, self.high = self.transform(low), self.transform(high)
        self.x0, self.x1 = float(LEFT), float(WIDTH - RIGHT)
        self.y0, self.y1 = top + height, top

    def x(self, day: datetime.date) -> float:
        return round(self.x0 + (day - self.first).days / self.days * (self.x1 - self.x0), 1)

    def y(self, minutes: float) -> float:
        fraction = (self.transform(minutes) - self.low) / (self.high - self.low)
        return round(self.y0 + fraction * (self.y1 - self.y0), 1)


def _date_ticks(scale: _Scale, months: tuple[int, ...], label: str) -> tuple[Tick, ...]:
    """A tick on the first day of each of `months` in every year the scale spans."""
    ticks = []
    for year in range(scale.first.year, scale.last.year + 1):
        for month in months:
            day = datetime.date(year, month, 1)
            if scale.first <= day <= scale.last:
                ticks.append(Tick(scale.x(day), day.strftime(label)))
    return tuple(ticks)


def _linear_ticks(low: float, high: float, scale: _Scale) -> tuple[Tick, ...]:
    """Four to eight round values between `low` and `high` minutes."""
    step = next((s for s in _LINEAR_STEPS if (high - low) / s <= 7), _LINEAR_STEPS[-1])
    value = math.ceil(low / step) * step
    ticks = []
    while value <= high + 1e-9:
        ticks.append(Tick(scale.y(value), f"{round(value, 2):g} min"))
        value += step
    return tuple(ticks)


def _series(track: Track, ordered: list[Record], scale: _Scale, index: int, standing: Record | None = None) -> Series:
    """The step line and points of `ordered` (dated, in date order); `standing` is the record that held at
    the panel's left edge, drawn as the line entering the panel."""
    points, steps = [], []
    if standing is not None:
        steps.append(f"M{scale.x0},{scale.y(standing.time_minutes)}")
    for record in ordered:
        assert record.date is not None
        x, y = scale.x(record.date), scale.y(record.time_minutes)
        kind = f"re-timing of #{record.number}" if record.is_retiming else f"#{record.number}"
        points.append(Point(x, y, f"{track.title} {kind}: {record.time_text}, {record.date}. {record.description}"))
        steps.append(f"M{x},{y}" if not steps else f"H{x}V{y}")
    last = ordered[-1]
    end_x = scale.x1
    steps.append(f"H{end_x}")
    return Series(
        track=track.name,
        title=track.title,
        index=index,
        path="".join(steps),
        points=tuple(points),
        end_label=f"#{last.number}: {last.time_text.rstrip('*')}",
        end_x=end_x,
        end_y=points[-1].y,
    )


def _dated_by_track(tracks: list[Track], records: list[Record]) -> list[tuple[int, Track, list[Record]]]:
    """(colour index, track, its dated records in date order) for each track that has any."""
    out = []
    for index, track in enumerate(tracks):
        dated = [r for r in records if r.track == track.name and r.date is not None]
        if dated:
            out.append((index, track, sorted(dated, key=lambda r: (r.date, r.number, r.is_retiming))))
    return out


def _main_panel(by_track: list[tuple[int, Track, list[Record]]]) -> Panel:
    dated = [r for _, _, rows in by_track for r in rows]
    dates = [r.date for r in dated if r.date is not None]
    first, last = min(dates) - datetime.timedelta(days=20), max(dates) + datetime.timedelta(days=20)
    minutes = [r.time_minutes for r in dated]
    low, high = min(minutes) / 1.4, max(minutes) * 1.25
    scale = _Scale(first, last, low, high, HEADER, MAIN_PLOT, log=True)
    return Panel(
        title="",
        left=scale.x0,
        right=scale.x1,
        top=scale.y1,
        bottom=scale.y0,
        x_ticks=_date_ticks(scale, (1, 7), "%b %Y"),
        y_ticks=tuple(Tick(scale.y(m), _minutes_label(m)) for m in _TICK_MINUTES if low <= m <= high),
        series=tuple(_series(track, rows, scale, index) for index, track, rows in by_track),
    )


def _recent_panel(index: int, track: Track, rows: list[Record], end: datetime.date, top: float) -> Panel | None:
    """The last twelve months (to the latest record of any track) of one track; None with no record in them."""
    start = end - datetime.timedelta(days=RECENT_DAYS)
    recent = [r for r in rows if r.date is not None and r.date >= start]
    if not recent:
        return None
    before = [r for r in rows if r.date is not None and r.date < start]
    standing = before[-1] if before else None
    shown = [r.time_minutes for r in recent + ([standing] if standing else [])]
    spread = max(max(shown) - min(shown), 0.05 * max(shown))
    low, high = min(shown) - 0.08 * spread, max(shown) + 0.08 * spread
    scale = _Scale(start, end + datetime.timedelta(days=10), low, high, top + PANEL_TITLE, RECENT_PLOT, log=False)
    return Panel(
        title=f"{track.title}, the last twelve months ({len(recent)} records; linear time axis)",
        left=scale.x0,
        right=scale.x1,
        top=scale.y1,
        bottom=scale.y0,
        x_ticks=_date_ticks(scale, (1, 3, 5, 7, 9, 11), "%b %Y"),
        y_ticks=_linear_ticks(low, high, scale),
        series=(_series(track, recent, scale, index, standing),),
    )


def render_chart(env: jinja2.Environment, tracks: list[Track], records: list[Record]) -> str:
    """The SVG text of the chart of `records` (those without a date are listed under the chart, not drawn)."""
    by_track = _dated_by_track(tracks, records)
    if not by_track:
        return env.get_template("chart.svg.j2").render(empty=True, width=WIDTH, height=HEADER + MAIN_PLOT + FOOTER)
    panels = [_main_panel(by_track)]
    end = max(r.date for _, _, rows in by_track for r in rows if r.date is not None)
    for index, track, rows in by_track:
        panel = _recent_panel(index, track, rows, end, panels[-1].bottom + X_LABELS)
        if panel is not None:
            panels.append(panel)
    undated = [f"{t.title} #{r.number}" for t in tracks for r in records if r.track == t.name and r.date is None]
    height = panels[-1].bottom + X_LABELS + (FOOTER if undated else FOOTER // 2)
    return env.get_template("chart.svg.j2").render(
        empty=False,
        width=WIDTH,
        height=round(height),
        panels=panels,
        x_title_y=round(panels[-1].bottom + X_LABELS - 8),
        undated=undated,
    )
