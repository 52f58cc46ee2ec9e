"""Write the README's sample output by running the commands it shows, or check that it is what they print.

    python scripts/readme_samples.py [--check] [--upstream DIR | --no-upstream]

A sample is a ```console block after one or more HTML comments (GitHub does not show them), one per command:

    <!-- sample: speedrun judge records/track_1_short/2026-01-18_UnifiedOptimizers
    in upstream
    keep ^PASS
    keep ^steps 3
    -->

- The first line is the command as a reader types it. It runs as `python -m speedrun ...` with this checkout's
  code, at COLUMNS=96 with NO_COLOR=1; its stdout, then its stderr, is the output.
- `in project` (the default): in this checkout, which it must not change. `in upstream`: in a checkout of the
  upstream repository, so that paths read `records/track_1_short/...` as they do there. `in scratch`: in a
  throw-away copy of this checkout's records/, README.md and docs/, beside the upstream checkout as
  `../modded-nanogpt`, for commands that write; the commands of one block share one copy.
- `until DATE`: the scratch copy keeps only the records dated DATE or earlier: the store as it was then, so
  that a published record can be submitted again, and what the sample shows stays the same as records are added.
- `keep REGEX [N]`: keep the first line, from the last one kept on, that REGEX finds, with the lines indented
  below it, or the N lines from it. Without `keep`, all of the output is kept.
- `json`: the output is JSON, shown with every list cut to its first item and "..."; `drop KEY`: the value of
  KEY, at any depth, shows as "...".

Lines left out show as one line `...`; in a line wider than the README's 96 code columns, the longest words
(long paths) lose their middle to `…`; a command that exits non-zero shows `# exit N` after it. Paths into
this checkout show as `~/speedrun/...`, into the upstream checkout as `~/modded-nanogpt/...`, as on a
reader's machine.

A block after `<!-- sample (gpu): COMMAND ... -->` needs GPUs: it is real output of a run, labelled with its
date and hardware and kept as it was, except for what `speedrun reproduce` prints before the record's script
starts, which is made again here (with the upstream checkout): the command runs in-process in a scratch folder,
with the launch left out, and so is the check for packages (triton) that a machine without GPUs lacks. Every
other ```console block must be a sample.

Without --check the README is rewritten in place; it is idempotent, so run it after any change to what the
commands print and commit the result. With --check nothing is written: exit 1 and a diff when a sample is not
what its command prints. The upstream checkout is --upstream DIR (a checkout, or its records/ folder), else
the archive the tests unpack (../shared/upstream-records.tar.xz); --no-upstream leaves those samples as they are.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COLUMNS = 96  # tests/test_readme_layout.py: what GitHub shows of a code line without scrolling
ELIDED = "..."
CUT = "…"
SHORTEST_WORD = 16  # a word is not cut shorter than this; a line still too wide is cut at its end
SCRATCH_COPY = ("records", "README.md", "docs")
MODES = ("project", "upstream", "scratch")

BLOCK = re.compile(r"((?:<!-- sample(?: \(gpu\))?:.*?-->\n)+)```console\n(.*?)^```$", re.DOTALL | re.MULTILINE)
COMMENT = re.compile(r"<!-- sample( \(gpu\))?:(.*?)-->", re.DOTALL)
CONSOLE = re.compile(r"^```console$", re.MULTILINE)


class SampleError(Exception):
    """A sample that cannot be made: a bad marker, a `keep` that finds nothing, output that is not JSON."""


@dataclass
class Sample:
    command: str
    mode: str = "project"
    keeps: list[tuple[re.Pattern[str], int]] = field(default_factory=list)
    until: str | None = None
    json: bool = False
    drop: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, text: str) -> Sample:
        first, *options = [line.strip() for line in text.strip().splitlines() if line.strip()]
        if not first.startswith("speedrun "):
            raise SampleError(f"sample {first!r}: the command must start with 'speedrun '")
        sample = cls(first)
        for option in options:
            word, _, rest = option.partition(" ")
            if word == "in" and rest in MODES:
                sample.mode = rest
            elif word == "keep" and rest:
                pattern, _, count = rest.rpartition(" ") if re.search(r" \d+$", rest) else (rest, "", "0")
                sample.keeps.append((re.compile(pattern), int(count)))
            elif word == "until" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", rest):
                sample.until = rest
            elif word == "json" and not rest:
                sample.json = True
            elif word == "drop" and rest:
                sample.drop.add(rest)
            else:
                raise SampleError(f"sample {first!r}: unknown option {option!r}")
        return sample


# --- running a command -----------------------------------------------------------------------------------------


@dataclass
class Places:
    """Where the commands run, and how the paths into them are shown."""

    upstream: Path | None  # the upstream checkout: the folder holding records/
    scratch: Path | None = None  # the current block's copy of this checkout

    def cwd(self, sample: Sample) -> Path:
        if sample.mode == "project":
            return ROOT
        if self.upstream is None:
            raise SampleError(f"{sample.command!r} needs the upstream archive: pass --upstream DIR")
        if sample.mode == "upstream":
            return self.upstream
        if self.scratch is None:
            self.scratch = make_scratch(self.upstream)
        if sample.until is not None:
            for record in sorted((self.scratch / "records").glob("*/*/record.toml")):
                dated = re.search(r"^date = (\d{4}-\d{2}-\d{2})", record.read_text(encoding="utf-8"), re.MULTILINE)
                if dated and dated[1] > sample.until:
                    shutil.rmtree(record.parent)
        return self.scratch

    def shown(self, text: str) -> str:
        """Paths as a reader's machine prints them: this checkout and the upstream one in the home folder."""
        homes = {ROOT: "~/speedrun"}
        if self.upstream is not None:
            homes[self.upstream] = "~/modded-nanogpt"
        if self.scratch is not None:
            homes[self.scratch] = "~/speedrun"
            homes[self.scratch.parent / "modded-nanogpt"] = "~/modded-nanogpt"
        prefixes = {str(form): home for path, home in homes.items() for form in (path, path.resolve())}
        for prefix in sorted(prefixes, key=len, reverse=True):
            text = re.sub(re.escape(prefix) + r"(?=/|\b)", prefixes[prefix], text)
        return text


def make_scratch(upstream: Path) -> Path:
    top = Path(tempfile.mkdtemp(prefix="readme-samples-"))
    scratch = top / "speedrun"
    scratch.mkdir()
    for name in SCRATCH_COPY:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, scratch / name)
        elif source.is_file():
            shutil.copy2(source, scratch / name)
    (top / "modded-nanogpt").symlink_to(upstream, target_is_directory=True)
    return scratch


def run(sample: Sample, places: Places) -> tuple[list[str], int]:
    """The lines the command prints (stdout, then stderr) and its exit code."""
    cwd = places.cwd(sample)
    env = {**os.environ, "COLUMNS": str(COLUMNS), "NO_COLOR": "1", "TERM": "dumb", "PYTHONPATH": str(ROOT)}
    env.pop("FORCE_COLOR", None)
    argv = [sys.executable, "-m", "speedrun", *shlex.split(sample.command)[1:]]
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    if "Traceback" in proc.stderr:
        raise SampleError(f"{sample.command!r} crashed:\n{proc.stderr}")
    if sample.json:
        try:
            document = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise SampleError(f"{sample.command!r}: the output is not JSON: {proc.stdout[:200]!r}") from None
        lines = compact_json(excerpt(document, sample.drop)).splitlines() + proc.stderr.splitlines()
    else:
        lines = (proc.stdout + proc.stderr).splitlines()
    lines = places.shown("\n".join(lines)).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return lines, proc.returncode


# --- what a sample shows ---------------------------------------------------------------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _unit_end(lines: list[str], start: int) -> int:
    """The end of the line at `start` and the lines indented below it."""
    end = start + 1
    while end < len(lines) and lines[end].strip() and _indent(lines[end]) > _indent(lines[start]):
        end += 1
    return end


def select(lines: list[str], sample: Sample) -> list[str]:
    """The lines each `keep` asks for, in order, with `...` where lines are left out."""
    if not sample.keeps:
        return lines
    shown: list[str] = []
    at = 0
    for pattern, count in sample.keeps:
        start = next((i for i in range(at, len(lines)) if pattern.search(lines[i])), None)
        if start is None:
            raise SampleError(f"{sample.command!r}: keep {pattern.pattern!r} finds no line after line {at}")
        if start > at:
            shown.append(ELIDED)
        at = min(start + count, len(lines)) if count else _unit_end(lines, start)
        shown += lines[start:at]
    if at < len(lines):
        shown.append(ELIDED)
    return shown


def excerpt(value: Any, drop: set[str]) -> Any:
    """`value` with every list cut to its first item and "...", and the values of `drop` as "..."."""
    if isinstance(value, dict):
        return {k: ELIDED if k in drop else excerpt(v, drop) for k, v in value.items()}
    if isinstance(value, list):
        return [excerpt(value[0], drop), ELIDED] if len(value) > 1 else [excerpt(v, drop) for v in value]
    return value


def compact_json(value: Any, indent: int = 0) -> str:
    """JSON laid out to the code column: a value that fits stays on its line, as many keys or items share a
    line as fit, and what does not fit opens onto lines of its own."""
    flat = json.dumps(value, ensure_ascii=False)
    if indent + len(flat) <= COLUMNS or not isinstance(value, (dict, list)) or not value:
        return flat
    if isinstance(value, dict):
        parts = [(json.dumps(k, ensure_ascii=False) + ": ", v) for k, v in value.items()]
        opening, closing = "{", "}"
    else:
        parts = [("", v) for v in value]
        opening, closing = "[", "]"
    pad = indent + 1
    lines: list[str] = []
    line = ""
    for key, item in parts:
        rendered = key + compact_json(item, pad + len(key)) + ","
        if "\n" in rendered:
            lines += [line, rendered] if line else [rendered]
            line = ""
        elif not line or pad + len(line) + 1 + len(rendered) <= COLUMNS:
            line = f"{line} {rendered}" if line else rendered
        else:
            lines.append(line)
            line = rendered
    if line:
        lines.append(line)
    lines[-1] = lines[-1].removesuffix(",")
    return opening + ("\n" + " " * pad).join(lines) + closing


def prompt(command: str, code: int) -> list[str]:
    """`$ command`, continued with `\\` before an option where it is wider than the column, and `# exit N`."""
    groups: list[str] = []
    for word in command.split(" "):
        if groups and not word.startswith("--") and not groups[-1].startswith("--") and len(groups) == 1:
            groups[-1] += " " + word  # the command and its arguments
        elif groups and not word.startswith("--") and groups[-1].startswith("--"):
            groups[-1] += " " + word  # an option's value
        else:
            groups.append(word)
    lines, line = [], "$"
    for group in groups:
        if len(line) + 1 + len(group) + 2 > COLUMNS and line != "$":
            lines.append(line + " \\")
            line = "   "
        line += " " + group
    suffix = f"  # exit {code}" if code else ""
    if len(line) + len(suffix) > COLUMNS:
        lines.append(line + " \\")
        line = "   "
    return [*lines, line + suffix]


def fit(line: str) -> str:
    """`line` within the code column: its longest words (long paths) lose their middle to `…`, so that both the
    start of a path and its `file:line` end still show."""
    while len(line) > COLUMNS:
        words = line.split(" ")
        longest = max(range(len(words)), key=lambda i: len(words[i]))
        word = words[longest]
        length = max(len(word) - (len(line) - COLUMNS), SHORTEST_WORD)
        if length >= len(word):
            return line[: COLUMNS - 1] + CUT
        tail = (length - 1) // 2
        words[longest] = word[: length - 1 - tail] + CUT + word[len(word) - tail :]
        line = " ".join(words)
    return line


def render(samples: list[Sample], places: Places) -> str:
    """The text of one ```console block: each command, then what the sample keeps of its output."""
    lines: list[str] = []
    places.scratch = None
    try:
        for sample in samples:
            output, code = run(sample, places)
            lines += prompt(sample.command, code) + [fit(line) for line in select(output, sample)]
    finally:
        if places.scratch is not None:
            shutil.rmtree(places.scratch.parent)
    return "\n".join(lines) + "\n"


# --- the README ------------------------------------------------------------------------------------------------


def regenerate(text: str, places: Places, skip_upstream: bool) -> tuple[str, list[str]]:
    """The README with every sample made anew (those that need upstream left alone with `skip_upstream`), and
    the commands of the samples that were left alone."""
    blocks = list(BLOCK.finditer(text))
    unmarked = len(CONSOLE.findall(text)) - len(blocks)
    if unmarked:
        raise SampleError(f"{unmarked} ```console block(s) without a <!-- sample: ... --> comment before them")
    parts, left, skipped = [], 0, []
    for block in blocks:
        comments = list(COMMENT.finditer(block[1]))
        if any(c[1] for c in comments):  # needs GPUs: real output, of which only the lines before the run are made
            if places.upstream is None:
                skipped.append(comments[0][2].strip().splitlines()[0])
                continue
            head = before_the_run(comments[0][2].strip().splitlines()[0], places.upstream)
            kept = block[2].splitlines()
            rest = kept[kept.index(head[-1]) + 1 :] if head[-1] in kept else kept
            parts += [text[left : block.start(2)], "\n".join(head + rest) + "\n"]
            left = block.end(2)
            continue
        samples = [Sample.parse(c[2]) for c in comments]
        if skip_upstream and any(s.mode != "project" for s in samples):
            skipped += [s.command for s in samples]
            continue
        parts += [text[left : block.start(2)], render(samples, places)]
        left = block.end(2)
    parts.append(text[left:])
    return "".join(parts), skipped


class _Started(Exception):
    """Raised where the record's script would start."""


def before_the_run(command: str, upstream: Path) -> list[str]:
    """What `speedrun reproduce` prints before it starts the record's script, and the command: run in-process in
    a scratch folder beside the upstream checkout (`../modded-nanogpt`), with tiny synthetic shards in its
    --data-dir, the launch left out and so the check for packages that only a GPU machine has."""
    import contextlib

    import speedrun.trainer.launch as launch
    import speedrun.trainer.reproduce as reproduce
    from speedrun.trainer.shards import write_synthetic

    args = command.split()
    if args[:2] != ["speedrun", "reproduce"] or len(args) % 2 == 0:
        raise SampleError(f"sample (gpu) {command!r}: only `speedrun reproduce PATH --option value...` is made here")
    option = dict(zip(args[3::2], args[4::2], strict=True))
    lines: list[str] = []

    def started(*args: object, **kwargs: object) -> int:
        raise _Started

    top = Path(tempfile.mkdtemp(prefix="readme-samples-"))
    here = Path.cwd()
    saved = (reproduce.missing_packages, launch.run_to_the_end)
    try:
        (top / "modded-nanogpt").symlink_to(upstream, target_is_directory=True)
        (top / "speedrun").mkdir()
        os.chdir(top / "speedrun")
        data = Path(option.get("--data-dir", "data/fineweb10B"))
        write_synthetic(data, 1, 2000, 2000, seed=0, language_name="order2")
        reproduce.missing_packages = lambda code, provided=(): []
        launch.run_to_the_end = started
        log, why = reproduce.choose_log(Path(args[2]))
        code = reproduce.read_record_code(log, why)
        steps, val_every = option.get("--steps"), option.get("--val-every")
        with contextlib.suppress(_Started):
            reproduce.run_record(
                code,
                Path(option.get("--out", "baseline")),
                int(option.get("--runs", "1")),
                int(option.get("--nproc-per-node", "8")),
                None if steps is None else int(steps),
                None if val_every is None else int(val_every),
                data,
                lines.append,
            )
    finally:
        reproduce.missing_packages, launch.run_to_the_end = saved
        os.chdir(here)
        shutil.rmtree(top)
    if not lines or not lines[-1].startswith("run 1 of "):
        raise SampleError(f"sample (gpu) {command!r}: the command stopped before it would start the run")
    return prompt(command, 0) + [fit(line) for line in Places(upstream).shown("\n".join(lines)).splitlines()]


def upstream_checkout(given: Path | None) -> Path | None:
    if given is not None:
        given = given.resolve()
        return given.parent if given.name == "records" else given
    sys.path.insert(0, str(ROOT))
    from tests.conftest import ARCHIVE, unpack_archive

    return unpack_archive().parent if ARCHIVE.is_file() else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 with a diff when out of date")
    parser.add_argument("--upstream", type=Path, help="an upstream checkout, or its records/ folder")
    parser.add_argument("--no-upstream", action="store_true", help="leave the samples that need upstream alone")
    args = parser.parse_args(argv)
    upstream = None if args.no_upstream else upstream_checkout(args.upstream)
    sys.path.insert(0, str(ROOT))  # this checkout's code, for what runs in-process
    if upstream is not None and not (upstream / "records").is_dir():
        print(f"{upstream}: no records/ folder (--upstream)", file=sys.stderr)
        return 2
    text = README.read_text(encoding="utf-8")
    try:
        new, skipped = regenerate(text, Places(upstream), skip_upstream=upstream is None)
    except SampleError as e:
        print(f"{README}: {e}", file=sys.stderr)
        return 2
    for command in skipped:
        print(f"left as it is (no upstream archive): {command}", file=sys.stderr)
    if new == text:
        return 0
    if args.check:
        diff = difflib.unified_diff(text.splitlines(), new.splitlines(), "README.md", "as printed now", lineterm="")
        print("\n".join(diff))
        print("the README's samples are out of date: run python scripts/readme_samples.py", file=sys.stderr)
        return 1
    README.write_text(new, encoding="utf-8")
    print(f"wrote the samples into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
