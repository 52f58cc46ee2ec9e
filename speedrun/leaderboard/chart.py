"""The record-history chart: record time against date for both tracks, log time axis, as an SVG.

The geometry is computed here and drawn by `templates/chart.svg.j2`, so the chart needs no plotting library.
Each track is a step line (a record stands until the next one beats it, re-timings included) with a
point per record; the SVG carries its own light and dark colours (`prefers-color-scheme`).
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from speedrun.store import Record
from speedrun.tracks import Track

if TYPE_CHECKING:
    import jinja2

WIDTH, HEIGHT = 880, 460
LEFT, RIGHT, TOP, BOTTOM = 76, 150, 56, 64  # margins around the plot area
_TICK_MINUTES = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)


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


def _minutes_label(minutes: float) -> str:
    if minutes < 60:
        return f"{minutes:g} min"
    return f"{minutes / 60:g} h"


class _Scale:
    """Dates -> x pixels (linear) and minutes -> y pixels (log10)."""

    def __init__(self, first: datetime.date, last: datetime.date, low_min: float, high_min: float) -> None:
        self.first, self.days = first, max((last - first).days, 1)
        self.low, self.high = math.log10(low_min), math.log10(high_min)
        self.x0, self.x1 = LEFT, WIDTH - RIGHT
        self.y0, self.y1 = HEIGHT - BOTTOM, TOP

    def x(self, day: datetime.date) -> float:
        return round(self.x0 + (day - self.first).days / self.days * (self.x1 - self.x0), 1)

    def y(self, minutes: float) -> float:
        fraction = (math.log10(minutes) - self.low) / (self.high - self.low)
        return round(self.y0 + fraction * (self.y1 - self.y0), 1)


def _date_ticks(first: datetime.date, last: datetime.date, scale: _Scale) -> list[Tick]:
    """A tick on 1 January and 1 July of every year in range."""
    ticks = []
    for year in range(first.year, last.year + 1):
        for month in (1, 7):
            day = datetime.date(year, month, 1)
            if first <= day <= last:
                ticks.append(Tick(scale.x(day), day.strftime("%b %Y")))
    return ticks


def _series(track: Track, records: list[Record], scale: _Scale, right_edge: datetime.date, index: int) -> Series:
    ordered = sorted((r for r in records if r.date is not None), key=lambda r: (r.date, r.number, r.is_retiming))
    points, steps = [], []
    for record in ordered:
        assert record.date is not None
        x, y = scale.x(record.date), scale.y(record.time_minutes)
        kind = f"re-timing of #{record.number}" if record.is_retiming else f"#{record.number}"
        points.append(Point(x, y, f"{track.title} {kind}: {record.time_text}, {record.date}. {record.description}"))
        steps.append(f"M{x},{y}" if not steps else f"H{x}V{y}")
    last = ordered[-1]
    end_x = scale.x(right_edge)
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


def render_chart(env: jinja2.Environment, tracks: list[Track], records: list[Record]) -> str:
    """The SVG text of the chart of `records` (those without a date are listed under the chart, not drawn)."""
    dated = [r for r in records if r.date is not None]
    if not dated:
        return env.get_template("chart.svg.j2").render(empty=True, width=WIDTH, height=HEIGHT)
    dates = [r.date for r in dated if r.date is not None]
    first = min(dates) - datetime.timedelta(days=20)
    last = max(dates) + datetime.timedelta(days=20)
    minutes = [r.time_minutes for r in dated]
    low, high = min(minutes) / 1.4, max(minutes) * 1.25
    scale = _Scale(first, last, low, high)
    series = [
        _series(track, [r for r in dated if r.track == track.name], scale, last, i)
        for i, track in enumerate(tracks)
        if any(r.track == track.name for r in dated)
    ]
    undated = [f"{t.title} #{r.number}" for t in tracks for r in records if r.track == t.name and r.date is None]
    return env.get_template("chart.svg.j2").render(
        empty=False,
        width=WIDTH,
        height=HEIGHT,
        plot={"left": scale.x0, "right": scale.x1, "top": scale.y1, "bottom": scale.y0},
        x_ticks=_date_ticks(first, last, scale),
        y_ticks=[Tick(scale.y(m), _minutes_label(m)) for m in _TICK_MINUTES if low <= m <= high],
        series=series,
        undated=undated,
    )
