"""Records and their verifications -> Markdown tables, spliced into the README between marker comments.

Only the text between a `<!-- leaderboard:NAME -->` line and its `<!-- /leaderboard:NAME -->` line is
replaced; every other byte of the README stays as it was.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from speedrun.errors import BadInput
from speedrun.readme_blocks import replace_block
from speedrun.store import Record, VerifiedFigures, is_url
from speedrun.tracks import Track

if TYPE_CHECKING:
    import jinja2

CHART_BLOCK = "chart"
RECENT_ROWS = 10  # rows of a track shown open; the older ones fold into a <details> block above them
NON_BREAKING_HYPHEN = "\u2011"  # looks like '-', but a browser does not break a line after it
NO_BREAK_SPACE = "\u00a0"


@dataclass(frozen=True)
class Row:
    """One table row, every cell already Markdown."""

    number: int
    time: str
    description: str
    date: str
    links: tuple[str, ...]
    contributors: str
    verified: str


def begin_marker(name: str) -> str:
    return f"<!-- leaderboard:{name} -->"


def end_marker(name: str) -> str:
    return f"<!-- /leaderboard:{name} -->"


def template_environment(override_dir: Path | None = None) -> jinja2.Environment:
    """The package's templates, with same-named files in `override_dir` taking precedence."""
    import jinja2

    loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("speedrun.leaderboard", "templates")]
    if override_dir is not None:
        if not override_dir.is_dir():
            raise BadInput(override_dir, "templates folder does not exist")
        loaders.insert(0, jinja2.FileSystemLoader(override_dir))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(["svg.j2"]),
    )


def cell(text: str) -> str:
    """Text made safe for one Markdown table cell: no line breaks, no column breaks, and no raw HTML, so a
    description cannot open a comment that hides the rest of the README or forge a marker line."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def link_target(target: str, record: Record, readme_dir: Path) -> str:
    """A URL as is; a path relative to the record folder as a path relative to the README."""
    if is_url(target):
        return target
    return quote(Path(os.path.relpath(record.folder.resolve() / target, readme_dir.resolve())).as_posix())


def unbroken(text: str) -> str:
    """`text` that a browser keeps on one line: '2024-05-28', '45 minutes' do not wrap in a narrow column."""
    return text.replace("-", NON_BREAKING_HYPHEN).replace(" ", NO_BREAK_SPACE)


def p_value_text(p: float | None) -> str:
    """'p=0.0024'; 'p<0.0001' below that, where two digits say nothing more (and an exponent's '-' breaks)."""
    if p is None:
        return "p n/a"
    return "p<0.0001" if p < 1e-4 else f"p={p:.2g}"


def verified_cell(figures: VerifiedFigures | None, track: Track) -> str:
    """'✓ n=20, mean 3.2792, p=0.0024; time: log' when the logs back the row; 'unverified' without figures.

    ✓: the published time is a time the logs give and the mean loss reaches the target; ⚠: one of them
    is not, and a time the logs give instead is shown ('logs: 1.404 min', 'logs: mean 1.365 min').
    Each figure is kept on one line, so the cell breaks only between figures.
    """
    if figures is None:
        return "unverified"
    f = figures
    shown = [f"n={f.n}", f"mean {f.mean_val_loss:.4f}", p_value_text(f.p_value)]
    if f.time_matches:
        timing = f"time: {f.time_from}"
    elif f.time_s is None:
        timing = "no time in logs"
    else:
        timing = f"logs: {'' if f.time_from == 'log' else f'{f.time_from} '}{f.time_s / 60:.3f} min"
    backed = f.time_matches and f.mean_val_loss <= track.target_val_loss
    mark = "✓" if backed else "⚠"
    return f"{mark} {', '.join(s.replace(' ', NO_BREAK_SPACE) for s in shown)}; {timing.replace(' ', NO_BREAK_SPACE)}"


def build_rows(
    records: list[Record], figures: dict[Record, VerifiedFigures], track: Track, readme_dir: Path
) -> list[Row]:
    rows = []
    for record in records:
        logs = [f"[log]({link_target(link, record, readme_dir)})" for link in record.log_urls]
        if len(logs) > 1:
            logs = [f"[log {i}]({link_target(link, record, readme_dir)})" for i, link in enumerate(record.log_urls, 1)]
        prs = [f"[PR]({url})" for url in record.pr_urls]
        contributors = ", ".join(record.contributors) or (record.note if record.is_retiming else "") or "-"
        rows.append(
            Row(
                number=record.number,
                time=unbroken(cell(record.time_text).replace("*", "\\*")),
                description=cell(record.description),
                date=unbroken(record.date.isoformat()) if record.date else "-",
                links=tuple(logs + prs),
                contributors=cell(contributors),
                verified=verified_cell(figures.get(record), track),
            )
        )
    return rows


def render_table(
    env: jinja2.Environment,
    track: Track,
    records: list[Record],
    figures: dict[Record, VerifiedFigures],
    readme_dir: Path,
) -> str:
    """One track's Markdown block: a heading line, the older rows folded, the recent rows, the footnotes."""
    rows = build_rows(records, figures, track, readme_dir)
    notes = [(r.number, cell(r.note)) for r in records if r.note and not r.is_retiming]
    verified = sum(1 for r in records if r in figures)
    older, recent = rows[: max(len(rows) - RECENT_ROWS, 0)], rows[-RECENT_ROWS:]
    return env.get_template("table.md.j2").render(
        track=track, rows=rows, older=older, recent=recent, notes=notes, verified=verified
    )


def splice(text: str, blocks: dict[str, str], readme: Path) -> str:
    """`text` with each named block's content replaced; BadInput when a marker is missing, doubled or misplaced."""
    for name, content in blocks.items():
        text = replace_block(text, begin_marker(name), end_marker(name), content, readme)
    return text
