"""Judge every record folder of the upstream archive in one process; print logs/s, MB/s and total seconds.

    python benchmarks/judge_corpus.py [RECORDS_DIR]

RECORDS_DIR defaults to the archive unpacked by the tests (../shared/upstream-records.tar.xz). Target: the
whole archive in under 5 s on 2 cores.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from speedrun.errors import BadInput
from speedrun.judge.judging import judge_path
from speedrun.judge.parse import looks_like_run_log
from speedrun.judge.verdict import Verdict


def record_folders(records: Path) -> list[Path]:
    return sorted(p for track in sorted(records.glob("track_*")) for p in track.iterdir() if p.is_dir())


def main(argv: list[str]) -> int:
    if argv:
        records = Path(argv[0])
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.conftest import unpack_archive

        records = unpack_archive()
    start, cpu_start = time.perf_counter(), time.process_time()
    logs = judged = rejected = 0
    verdicts = dict.fromkeys(Verdict, 0)
    size = 0
    for folder in record_folders(records):
        try:
            judgements = judge_path(folder)
        except BadInput as e:
            if not any(looks_like_run_log(p) for p in folder.rglob("*")):
                continue  # a folder of notes only
            rejected += 1
            print(f"bad input: {e}", file=sys.stderr)
            continue
        found = {r.path for j in judgements for r in (*j.runs, *(j.baseline.runs if j.baseline else ()))}
        logs += len(found)
        size += sum(p.stat().st_size for p in found)
        judged += len(judgements)
        for j in judgements:
            if j.decides:
                verdicts[j.verdict] += 1
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    counts = ", ".join(f"{n} {v.value}" for v, n in verdicts.items())
    print(
        f"{logs} logs, {size / 1e6:.1f} MB, {judged} groups judged (candidates: {counts}), {rejected} folders rejected"
    )
    print(f"{logs / seconds:.0f} logs/s, {size / 1e6 / seconds:.1f} MB/s, {seconds:.2f} s total ({cpu:.2f} s of CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
