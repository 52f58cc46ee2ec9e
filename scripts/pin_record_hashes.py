"""Pin, in each record.toml whose logs are at hand, the hashes the judge computes from the record's own logs.

    python scripts/pin_record_hashes.py --logs UPSTREAM/records [--records records] [--check]

`data_pipeline_sha256` is the data-pipeline hash of the record's code (its first linked log that has one), and
`code_sha256` the sha256 of the training code embedded in its linked logs. The judge compares the next record
with the pinned hash instead of reading this record's logs, and recognises runs of this record's code in
another record's folder. `--logs` is a local copy of the upstream repository's records/ folder. `--check` writes
nothing and exits 1 when a pin is missing or differs. A maintainer's tool: it reads logs as text, like the judge.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from speedrun.errors import BadInput
from speedrun.judge.discover import code_hash, find_run_logs
from speedrun.judge.parse import parse_log
from speedrun.judge.pipeline import data_pipeline_hash
from speedrun.store import Record, load_records, local_log_path

PINNED_KEYS = ("data_pipeline_sha256", "code_sha256")


def linked_logs(record: Record, logs_dir: Path) -> list[Path]:
    """The record's linked logs on this machine: each linked file, or the logs of a linked folder."""
    found: list[Path] = []
    for link in record.log_urls:
        try:
            local = local_log_path(record, link, logs_dir)
        except BadInput:
            continue
        if local is None:
            continue
        found += [local] if local.is_file() else find_run_logs(local)
    return found


def hashes(record: Record, logs_dir: Path) -> tuple[str | None, list[str]]:
    """(the data-pipeline hash of the record's first linked log that has one, the code hashes of its logs)."""
    pipeline: str | None = None
    code: list[str] = []
    for log in linked_logs(record, logs_dir):
        run = parse_log(log)
        if run.source:
            pipeline = pipeline or data_pipeline_hash(run.source, run.sectioned)
        digest = code_hash(run)
        if digest and digest not in code:
            code.append(digest)
    return pipeline, code


def pinned_text(text: str, pipeline: str | None, code: list[str]) -> str:
    """record.toml text with the pins set: old pin lines dropped, new ones before the first [table] (and the
    comments above it)."""
    lines = [line for line in text.splitlines() if not re.match(rf"^({'|'.join(PINNED_KEYS)})\s*=", line)]
    pins = []
    if pipeline:
        pins.append(f'data_pipeline_sha256 = "{pipeline}"')
    if code:
        pins.append("code_sha256 = [" + ", ".join(f'"{c}"' for c in code) + "]")
    at = next((i for i, line in enumerate(lines) if line.startswith("[")), len(lines))
    while at > 0 and (not lines[at - 1].strip() or lines[at - 1].startswith("#")):  # above a table's comments
        at -= 1
    return "\n".join(lines[:at] + pins + lines[at:]) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=Path, required=True, help="a local copy of the upstream records/ folder")
    parser.add_argument("--records", type=Path, default=Path(__file__).resolve().parents[1] / "records")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a pin is missing or stale")
    args = parser.parse_args(argv)
    stale = 0
    for record in load_records(args.records):
        pipeline, code = hashes(record, args.logs)
        if not pipeline and not code:
            continue
        text = record.path.read_text(encoding="utf-8")
        new = pinned_text(text, pipeline, code)
        if new == text:
            continue
        stale += 1
        if args.check:
            print(f"{record.path}: pins differ from the logs", file=sys.stderr)
        else:
            record.path.write_text(new, encoding="utf-8")
            print(f"pinned {record.path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
