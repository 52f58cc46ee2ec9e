"""A record's verified figures: taken from the judge's verification, kept in its record.toml, compared later.

The figures go into a `[verified]` table between two comment lines at the end of the record.toml (a TOML
table must follow the top-level fields). Only that block is ever rewritten: the maintainer's fields,
comments and their order stay byte for byte as they were. With the logs at hand the block is recomputed
and compared; without them it is what the README shows.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

from speedrun import __version__
from speedrun.errors import BadInput
from speedrun.leaderboard.verify import Verification
from speedrun.store import VERIFIED_BEGIN, VERIFIED_END, VERIFIED_TABLE, Record, VerifiedFigures, is_url

# https://github.com/<owner>/<repo>/(blob|tree)/<40-hex commit>/...: a link that pins the commit it means.
_PINNED_LINK = re.compile(r"^https://github\.com/[^/]+/[^/]+/(?:blob|tree)/(?P<commit>[0-9a-f]{40})/")


def figures_of(record: Record, verification: Verification, checkout_commit: str | None = None) -> VerifiedFigures:
    """The figures to record for `record`: as the judge computed them, but the p-value to four significant
    digits (its last bits depend on the scipy build, and a re-check must not see them as a change).

    `checkout_commit` is the commit of the --logs folder's git checkout, if it is one; it is recorded only for
    rows whose logs are upstream links, and a link that pins a commit says it better.
    """
    v = verification
    if v.time_source is not None:
        time_from: str | None = v.time_source
        time_s = {"log": v.log_time_s, "mean": v.mean_time_s, "normalised": v.normalised_time_s}[v.time_source]
    elif v.log_time_s is not None:
        time_from, time_s = "log", v.log_time_s
    elif v.mean_time_s is not None:
        time_from, time_s = "mean", v.mean_time_s
    else:
        time_from, time_s = None, None
    root = v.root if v.root is not None else v.linked_log.parent
    return VerifiedFigures(
        n=v.n,
        mean_val_loss=v.mean_val_loss,
        p_value=_significant(v.p_value),
        verdict=v.verdict,
        time_s=time_s,
        time_from=time_from,
        time_matches=v.time_source is not None,
        sha256=tuple(sorted((_relative(path, root), digest) for path, digest in v.run_sha256)),
        judge_version=__version__,
        upstream_commit=_upstream_commit(record, checkout_commit),
    )


def _significant(p: float | None) -> float | None:
    return None if p is None or not math.isfinite(p) else float(f"{p:.4g}")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def _upstream_commit(record: Record, checkout_commit: str | None) -> str | None:
    links = [link for link in record.log_urls if is_url(link)]
    for link in links:
        match = _PINNED_LINK.match(link)
        if match:
            return match["commit"]
    return checkout_commit if links else None


def checkout_commit(folder: Path) -> str | None:
    """The commit checked out in the git work tree that holds `folder`, or None when it is not in one."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--verify", "HEAD"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = proc.stdout.strip()
    return commit if proc.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else None


def render_block(figures: VerifiedFigures) -> str:
    """The generated block, comment lines included, without a final newline."""
    f = figures
    lines = [VERIFIED_BEGIN, f"[{VERIFIED_TABLE}]", f"n = {f.n}", f"mean_val_loss = {_number(f.mean_val_loss)}"]
    if f.p_value is not None:
        lines.append(f"p_value = {_number(f.p_value)}")
    lines.append(f"verdict = {_string(f.verdict)}")
    if f.time_s is not None:
        lines.append(f"time_s = {_number(f.time_s)}")
    if f.time_from is not None:
        lines.append(f"time_from = {_string(f.time_from)}")
    lines += [f"time_matches = {'true' if f.time_matches else 'false'}", f"judge_version = {_string(f.judge_version)}"]
    if f.upstream_commit is not None:
        lines.append(f"upstream_commit = {_string(f.upstream_commit)}")
    lines += ["", f"[{VERIFIED_TABLE}.sha256]"]
    lines += [f"{_string(path)} = {_string(digest)}" for path, digest in f.sha256]
    lines.append(VERIFIED_END)
    return "\n".join(lines)


def _number(value: float) -> str:
    return repr(float(value))  # the shortest text that reads back as the same float; valid TOML


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def with_block(text: str, block: str, path: Path) -> str:
    """`text` (a record.toml) with its generated block replaced by `block`, or `block` appended."""
    newline = "\r\n" if "\r\n" in text else "\n"
    block = block.replace("\n", newline)
    begins, ends = text.count(VERIFIED_BEGIN), text.count(VERIFIED_END)
    if begins == 0 and ends == 0:
        if re.search(rf"^\s*\[{VERIFIED_TABLE}[.\]]", text, flags=re.MULTILINE):
            raise BadInput(path, f"has a [{VERIFIED_TABLE}] table outside the block that `speedrun leaderboard` writes")
        return text.rstrip("\r\n") + newline + newline + block + newline
    start, stop = text.find(VERIFIED_BEGIN), text.find(VERIFIED_END)
    if begins != 1 or ends != 1 or stop < start:
        raise BadInput(path, f"needs its generated [{VERIFIED_TABLE}] block once, between its two comment lines")
    return text[:start] + block + text[stop + len(VERIFIED_END) :]


def changes(record: Record, old: VerifiedFigures | None, new: VerifiedFigures) -> list[str]:
    """One line per log whose bytes changed since its figures were recorded, and one for changed figures."""
    if old is None:
        return []
    lines = []
    before, after = dict(old.sha256), dict(new.sha256)
    for log in sorted(before.keys() | after.keys()):
        if log not in after:
            lines.append(f"{record.path}: log {log} was verified before and is no longer among the runs judged")
        elif log not in before:
            lines.append(f"{record.path}: log {log} is new among the runs judged")
        elif before[log] != after[log]:
            lines.append(
                f"{record.path}: log {log} changed since it was verified "
                f"(sha256 {before[log][:12]}... is now {after[log][:12]}...)"
            )
    figures = ("n", "mean_val_loss", "p_value", "verdict", "time_s", "time_from", "time_matches")
    moved = [
        f"{name} {getattr(old, name)} -> {getattr(new, name)}"
        for name in figures
        if getattr(old, name) != getattr(new, name)
    ]
    if moved:
        lines.append(f"{record.path}: the judge's figures changed: {', '.join(moved)}")
    return lines
