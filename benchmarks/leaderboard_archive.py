"""Regenerate the leaderboard with every row verified against the upstream archive; print the seconds it takes.

    python benchmarks/leaderboard_archive.py [UPSTREAM_RECORDS_DIR]

UPSTREAM_RECORDS_DIR (a local copy of the upstream repository's records/ folder) defaults to the archive
unpacked by the tests (../shared/upstream-records.tar.xz). The README, the chart and a copy of records/ go
to a temporary folder; the project's own are not touched. Target: under 10 s on 2 cores.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    if argv:
        upstream = Path(argv[0])
    else:
        from tests.conftest import unpack_archive

        upstream = unpack_archive()
    from speedrun.leaderboard.generate import generate, write

    with tempfile.TemporaryDirectory() as tmp:
        readme = Path(tmp) / "README.md"
        shutil.copy(ROOT / "README.md", readme)
        shutil.copytree(ROOT / "records", Path(tmp) / "records")
        wall, cpu = time.perf_counter(), time.process_time()
        children = os.times()
        board = generate(Path(tmp) / "records", readme, logs_dir=upstream)
        write(board)
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        after = os.times()
        cpu += (after.children_user - children.children_user) + (after.children_system - children.children_system)
    verified = board.verifications.values()
    backed = sum(v.time_agrees for v in verified)
    print(
        f"{len(board.records)} records, {len(board.verifications)} verified from "
        f"{sum(v.n for v in verified)} runs, published time backed by the logs for {backed}"
    )
    print(f"{wall:.2f} s wall, {cpu:.2f} s CPU (this process and its workers), {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
