"""Judge every record folder of the upstream archive in one process, beside a bare baseline over the same files.

    python benchmarks/judge_corpus.py [RECORDS_DIR] [--repeat N]

RECORDS_DIR defaults to the archive unpacked by the tests (../shared/upstream-records.tar.xz). Prints logs/s,
MB/s and seconds for the judge, then, from the same run, the bare baseline (read every byte of the same logs
and run one compiled step-line regex over them: the least any judge must do), the ratio of the two, and the
process's peak memory. Target: the whole archive in under 5 s on 2 cores.

On a shared machine one run's figures move by a third from minute to minute, baseline included. `--repeat N`
runs the benchmark N times, each in a fresh process (a second run in the same process would find the first
run's caches), and prints each run's figures, then the best and the median.
"""

from __future__ import annotations

import argparse
import gzip
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from speedrun.errors import BadInput
from speedrun.judge.discover import holds_run_logs
from speedrun.judge.judging import judge_path
from speedrun.judge.verdict import Verdict

STEP_LINE = re.compile(rb"^step:(\d+)/(\d+) (?:val_loss:(\S+) )?train_time:(\S+)ms", re.MULTILINE)


def record_folders(records: Path) -> list[Path]:
    return sorted(p for track in sorted(records.glob("track_*")) for p in track.iterdir() if p.is_dir())


def read_bytes(path: Path) -> bytes:
    with path.open("rb") as f:
        data = f.read()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def bare_baseline(paths: list[Path]) -> tuple[float, int]:
    """Seconds to read every byte of the logs and match one step-line regex over them; the lines matched."""
    start = time.perf_counter()
    lines = sum(len(STEP_LINE.findall(read_bytes(p))) for p in paths)
    return time.perf_counter() - start, lines


def judge_all(folders: list[Path]) -> tuple[float, float, set[Path], int, dict[Verdict, int], int]:
    start, cpu_start = time.perf_counter(), time.process_time()
    judged = rejected = 0
    verdicts = dict.fromkeys(Verdict, 0)
    found: set[Path] = set()
    for folder in folders:
        try:
            judgements = judge_path(folder)
        except BadInput as e:
            if not holds_run_logs(folder):
                continue  # a folder of notes only
            rejected += 1
            print(f"bad input: {e}", file=sys.stderr)
            continue
        found |= {r.path for j in judgements for r in (*j.runs, *(j.baseline.runs if j.baseline else ()))}
        judged += len(judgements)
        for j in judgements:
            if j.decides:
                verdicts[j.verdict] += 1
    return time.perf_counter() - start, time.process_time() - cpu_start, found, judged, verdicts, rejected


def repeat(times: int, argv: list[str]) -> int:
    """Run the benchmark `times` times, each in a fresh process; print each run's figures, the best and the median."""
    runs = []
    for _ in range(times):
        out = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, check=False)
        figures = dict(re.findall(r"^(judge|baseline|ratio):\s+([\d.]+)", out.stdout, re.MULTILINE))
        if out.returncode != 0 or len(figures) != 3:
            print(out.stdout + out.stderr, end="", file=sys.stderr)
            return out.returncode or 1
        runs.append((float(figures["judge"]), float(figures["baseline"]), float(figures["ratio"])))
        print(f"judge {runs[-1][0]:.2f} s, baseline {runs[-1][1]:.2f} s, ratio {runs[-1][2]:.2f}x", flush=True)
    for name, column in (("judge", 0), ("baseline", 1), ("ratio", 2)):
        values = [run[column] for run in runs]
        unit = "x" if name == "ratio" else " s"
        print(f"{name}: best {min(values):.2f}{unit}, median {statistics.median(values):.2f}{unit} of {times} runs")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", nargs="?", type=Path, help="the records folder (default: the unpacked archive)")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each in a fresh process")
    args = parser.parse_args(argv)
    if args.repeat > 1:
        return repeat(args.repeat, [str(args.records)] if args.records else [])
    if args.records is not None:
        records = args.records
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests.conftest import unpack_archive

        records = unpack_archive()
    folders = record_folders(records)
    every_file = [p for folder in folders for p in folder.rglob("*") if p.is_file()]
    for path in every_file:  # warm the page cache, so that neither timing below pays for the disk
        path.read_bytes()

    seconds, cpu, found, judged, verdicts, rejected = judge_all(folders)
    logs = sorted(found)
    size = sum(p.stat().st_size for p in logs)
    baseline_seconds, step_lines = bare_baseline(logs)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    counts = ", ".join(f"{n} {v.value}" for v, n in verdicts.items())
    print(f"{len(logs)} logs, {size / 1e6:.1f} MB, {judged} groups judged (candidates: {counts}), {rejected} rejected")
    print(
        f"judge:    {seconds:.2f} s ({cpu:.2f} s of CPU), {len(logs) / seconds:.0f} logs/s, "
        f"{size / 1e6 / seconds:.1f} MB/s"
    )
    print(f"baseline: {baseline_seconds:.2f} s to read every byte and match {step_lines:,} step lines with one regex")
    print(f"ratio:    {seconds / baseline_seconds:.2f}x the baseline; peak memory {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
