"""See the README and the record chart as a reader on GitHub does: headless Chromium, light and dark mode.

    python docs/render_readme.py [--out DIR] [--chromium PATH]

The README is rendered as GitHub-flavoured Markdown (markdown-it-py, which rich already installs, with
tables and raw HTML such as <details>) in a stylesheet with GitHub's sizes at its README width, 880 px;
the chart is rendered on its own on a transparent page. Screenshots go to DIR (default
.cache/readme-render/, which git ignores). It prints what a reader would trip over, and exits 1 if any:

- a date or time cell of the record tables that wraps onto a second line;
- a code block wider than the column, whose end (often its comment) hides behind a scroll bar;
- a chart whose background is not opaque in the page's colour, or whose title does not stand out from it.

It also prints how far down the page the Training section starts. Needs Chromium (Debian: `apt-get install
-y chromium`); run by hand after changing the README's layout, the tables or the chart.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMN = 880  # GitHub's README column, in CSS pixels
MARGIN = 24
BACKGROUND = {"light": (255, 255, 255), "dark": (13, 17, 23)}  # GitHub's page colours, which the chart takes
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--allow-file-access-from-files",
]

# GitHub's Markdown sizes and colours as facts (font stack, 16 px text, 85 % code, 6 x 13 px table cells,
# tables as scrollable blocks at most the column wide), written out here rather than fetched.
STYLE = """
:root { color-scheme: light dark; --fg: #1f2328; --bg: #ffffff; --muted: #59636e; --border: #d1d9e0;
        --code-bg: #f6f8fa; --link: #0969da; --row: #f6f8fa; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #f0f6fc; --bg: #0d1117; --muted: #9198a1; --border: #3d444d; --code-bg: #151b23;
          --link: #4493f8; --row: #151b23; } }
html, body { margin: 0; background: var(--bg); color: var(--fg); }
.markdown-body { box-sizing: content-box; width: COLUMNpx; padding: MARGINpx;
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif;
  font-size: 16px; line-height: 1.5; word-wrap: break-word; }
.markdown-body a { color: var(--link); text-decoration: none; }
.markdown-body h1, .markdown-body h2 { padding-bottom: .3em; border-bottom: 1px solid var(--border); }
.markdown-body h1 { font-size: 2em; } .markdown-body h2 { font-size: 1.5em; } .markdown-body h3 { font-size: 1.25em; }
.markdown-body h1, .markdown-body h2, .markdown-body h3 { margin: 24px 0 16px; font-weight: 600; line-height: 1.25; }
.markdown-body p, .markdown-body ul, .markdown-body pre, .markdown-body table,
.markdown-body details { margin: 0 0 16px; }
.markdown-body code, .markdown-body pre { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas,
  "Liberation Mono", monospace; font-size: 85%; }
.markdown-body code { padding: .2em .4em; background: var(--code-bg); border-radius: 6px; white-space: break-spaces; }
.markdown-body pre { padding: 16px; overflow: auto; line-height: 1.45; background: var(--code-bg); border-radius: 6px; }
.markdown-body pre code { padding: 0; font-size: 100%; background: transparent; white-space: pre; }
.markdown-body table { display: block; width: max-content; max-width: 100%; overflow: auto; border-spacing: 0;
  border-collapse: collapse; }
.markdown-body th, .markdown-body td { padding: 6px 13px; border: 1px solid var(--border); }
.markdown-body th { font-weight: 600; }
.markdown-body tr:nth-child(2n) { background: var(--row); }
.markdown-body img { max-width: 100%; box-sizing: content-box; }
.markdown-body summary { cursor: pointer; display: list-item; }
""".replace("COLUMN", str(COLUMN)).replace("MARGIN", str(MARGIN))

# Run in the page after it loads: the measurements go into a <pre id="measured"> that --dump-dom prints.
MEASURE = """
<script>
function lineCount(el) {
  const range = document.createRange(); range.selectNodeContents(el);
  return new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top))).size;
}
window.addEventListener("load", () => {
  const training = document.getElementById("training");
  const result = {
    dark: matchMedia("(prefers-color-scheme: dark)").matches,
    height: Math.ceil(document.documentElement.scrollHeight),
    training_y: training ? Math.round(training.getBoundingClientRect().top + scrollY) : null,
    wrapped: [], overflowing: [], tables: 0, cells: 0,
  };
  document.querySelectorAll("details").forEach(d => d.open = true);  // measure the folded rows too
  for (const table of document.querySelectorAll("table")) {
    const head = [...table.querySelectorAll("thead th")].map(th => th.textContent.trim());
    const columns = ["Date", "Record time"].map(name => head.indexOf(name)).filter(i => i >= 0);
    if (columns.length < 2) continue;
    result.tables += 1;
    for (const row of table.querySelectorAll("tbody tr")) {
      for (const i of columns) {
        const cell = row.children[i]; result.cells += 1;
        if (lineCount(cell) > 1) result.wrapped.push(row.children[0].textContent + ": " + cell.textContent);
      }
    }
  }
  for (const pre of document.querySelectorAll("pre")) {
    if (pre.scrollWidth > pre.clientWidth + 1) {
      const longest = pre.textContent.split("\\n").reduce((a, b) => (b.length > a.length ? b : a), "");
      result.overflowing.push(longest);
    }
  }
  document.querySelectorAll("details").forEach(d => d.open = false);
  const out = document.createElement("pre"); out.id = "measured"; out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>
"""


def readme_html(markdown: str, base: Path) -> str:
    """The README as GitHub would show it: its Markdown, headings with GitHub's anchors, in our stylesheet."""
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    body = renderer.render(markdown)

    def anchor(match: re.Match[str]) -> str:
        text = re.sub(r"<[^>]+>", "", match[2])
        slug = re.sub(r"[^\w\- ]", "", html.unescape(text).lower()).replace(" ", "-")
        return f'<h{match[1]} id="{slug.split("-")[0] if match[1] == "2" else slug}">{match[2]}</h{match[1]}>'

    body = re.sub(r"<h([1-3])>(.*?)</h\1>", anchor, body)
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><base href="{base.as_uri()}/">'
        f"<style>{STYLE}</style></head><body><article class='markdown-body'>{body}</article>{MEASURE}</body></html>"
    )


def chromium(binary: str, mode: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    scheme = "preferredColorScheme=0" if mode == "dark" else "preferredColorScheme=1"
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--blink-settings={scheme}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def measure(binary: str, page: Path, mode: str, profile: Path) -> dict[str, object]:
    proc = chromium(binary, mode, profile, f"--window-size={COLUMN + 2 * MARGIN},1000", "--dump-dom", page.as_uri())
    match = re.search(r'<pre id="measured">(.*?)</pre>', proc.stdout, flags=re.DOTALL)
    if match is None:
        raise SystemExit(f"chromium gave no measurements for {page} ({mode}): {proc.stderr.strip()[-500:]}")
    return json.loads(html.unescape(match[1]))


def screenshot(binary: str, page: Path, mode: str, profile: Path, out: Path, size: tuple[int, int]) -> Path:
    args = [f"--window-size={size[0]},{size[1]}", "--default-background-color=00000000", f"--screenshot={out}"]
    chromium(binary, mode, profile, *args, page.as_uri())
    if not out.is_file():
        raise SystemExit(f"chromium wrote no screenshot {out}")
    return out


def read_png(path: Path) -> tuple[int, int, int, list[bytearray]]:
    """(width, height, channels, rows) of an 8-bit, non-interlaced RGB or RGBA PNG, such as Chromium writes."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError(f"{path}: PNG layout not handled (depth {depth}, colour type {colour})")
            channels = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += chunk
    raw, stride, rows = zlib.decompress(idat), width * channels, []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(line)
        previous = line
    return width, height, channels, rows


def pixel(rows: list[bytearray], channels: int, x: int, y: int) -> tuple[int, ...]:
    return tuple(rows[y][x * channels : (x + 1) * channels])


def luminance(rgb: tuple[int, ...]) -> float:
    return (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255


def check_chart(png: Path, mode: str) -> list[str]:
    """Problems with one screenshot of the chart on a transparent page."""
    width, height, channels, rows = read_png(png)
    problems = []
    corners = [(1, 1), (width - 2, 1), (1, height - 2), (width - 2, height - 2)]
    for x, y in corners:
        colour = pixel(rows, channels, x, y)
        if channels == 4 and colour[3] != 255:
            problems.append(f"chart ({mode}): transparent background at ({x}, {y}), alpha {colour[3]}")
        elif max(abs(c - e) for c, e in zip(colour[:3], BACKGROUND[mode], strict=True)) > 2:
            problems.append(f"chart ({mode}): background {colour[:3]} at ({x}, {y}), expected {BACKGROUND[mode]}")
    title = [luminance(pixel(rows, channels, x, y)) for y in range(10, 32) for x in range(80, 480)]
    contrast = (1 - min(title)) if mode == "light" else max(title)
    if contrast < 0.7:
        problems.append(f"chart ({mode}): the title hardly stands out from the background")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "readme-render")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = parser.parse_args(argv)
    if not args.chromium:
        print("needs Chromium: apt-get install -y chromium (or pass --chromium PATH)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, stop = readme.index("## The leaderboard"), readme.index("## Training")
    pages = {"readme": readme, "leaderboard": readme[start:stop]}
    chart = ROOT / "docs" / "record-history.svg"
    match = re.search(r'<svg[^>]* width="(\d+)" height="(\d+)"', chart.read_text(encoding="utf-8"))
    assert match, chart
    chart_size = (int(match[1]), int(match[2]))
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, text in pages.items():
            (work / f"{name}.html").write_text(readme_html(text, ROOT), encoding="utf-8")
        (work / "chart.html").write_text(
            f'<!doctype html><html><body style="margin:0"><img src="{chart.as_uri()}"></body></html>', encoding="utf-8"
        )
        for mode in ("light", "dark"):
            profile = work / f"profile-{mode}"
            figures = measure(args.chromium, work / "readme.html", mode, profile)
            if figures["dark"] != (mode == "dark"):
                problems.append(f"README ({mode}): Chromium did not render in {mode} mode")
            print(
                f"README, {mode}: {figures['height']} px tall; Training starts at {figures['training_y']} px; "
                f"{figures['tables']} record tables, {figures['cells']} date and time cells, "
                f"{len(figures['wrapped'])} wrapped; {len(figures['overflowing'])} code blocks wider than the column"
            )
            problems += [f"README ({mode}): cell wraps: #{cell}" for cell in figures["wrapped"]]
            problems += [f"README ({mode}): code block overflows: {line!r}" for line in figures["overflowing"]]
            width = COLUMN + 2 * MARGIN
            section = measure(args.chromium, work / "leaderboard.html", mode, profile)
            shots = [
                screenshot(
                    args.chromium,
                    work / "leaderboard.html",
                    mode,
                    profile,
                    args.out / f"leaderboard-{mode}.png",
                    (width, int(section["height"])),
                ),
                screenshot(
                    args.chromium,
                    work / "readme.html",
                    mode,
                    profile,
                    args.out / f"readme-{mode}.png",
                    (width, int(figures["height"])),
                ),
                screenshot(
                    args.chromium, work / "chart.html", mode, profile, args.out / f"chart-{mode}.png", chart_size
                ),
            ]
            problems += check_chart(shots[-1], mode)
            print(f"  screenshots: {', '.join(str(s) for s in shots)}")
    for problem in problems:
        print(f"problem: {problem}")
    print("no problems found" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
