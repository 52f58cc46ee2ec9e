"""Time and memory of the judge on hostile input: every attack of the red-team corpus, and logs at the bounds.

    python benchmarks/judge_attacks.py [--only NAME_PART]

Each case is judged in a fresh process (so that its peak memory is its own), after the imports: the figure
is the judge's own seconds and the process's peak resident memory. Bounds: under 2 s for any single log and
under 1 GB of memory (BOUND_SECONDS, BOUND_MIB); a case over either is marked. The cases at the bounds:

- a 24 MB gzip (240 copies of a gzip member of 100 MB of newlines: 24 GB decompressed);
- a log as large as the parser reads: a source of 20,000 statements that all name the compiler,
  and 50,000 step lines;
- eight `=` boundaries in strings before the real one, each after ~60 KB of code;
- 64 `=` boundaries inside one string;
- 50,000 step lines of an unusual shape, read one by one.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import unpack_archive  # noqa: E402
from tests.redteam.corpus import ATTACKS, RULE, Workspace  # noqa: E402

BOUND_SECONDS = 2.0
BOUND_MIB = 1024
# Peak memory is the process's own high-water mark (VmHWM), not ru_maxrss: that one keeps, across exec, the size
# of the parent the child was forked from.
CHILD = """
import json, sys, time
from speedrun.errors import BadInput
from speedrun.judge.judging import judge_path
start = time.perf_counter()
try:
    outcome = ",".join(j.verdict for p in sys.argv[1:] for j in judge_path(p))
except BadInput as e:
    outcome = "bad input: " + str(e)[-80:]
seconds = time.perf_counter() - start
status = open("/proc/self/status").read()
peak_kib = int(status.split("VmHWM:")[1].split()[0])
print(json.dumps({"seconds": seconds, "mib": peak_kib / 1024, "outcome": outcome}))
"""
ENVIRONMENT = "Running Python 3.12.3\nRunning PyTorch 2.10.0 compiled for CUDA 12.8\nnvidia-smi: none\n"


def step_lines(count: int, shape: str = "step:{i}/{n} train_time:{i}ms step_avg:1.00ms\n") -> str:
    lines = "".join(shape.format(i=i, n=count) for i in range(1, count))
    return lines + f"step:{count}/{count} val_loss:3.2700 train_time:{count}ms step_avg:1.00ms\n"


def bound_cases(root: Path) -> dict[str, Path]:
    cases: dict[str, Path] = {}
    folder = root / "bounds"
    folder.mkdir()

    bomb = folder / "bomb" / "run.txt.gz"
    bomb.parent.mkdir()
    member = gzip.compress(b"\n" * 100_000_000, compresslevel=9)
    with bomb.open("wb") as f:
        f.write(gzip.compress(step_lines(10).encode()))
        for _ in range(max(1, 24_000_000 // len(member))):
            f.write(member)
    cases["gzip of 24 MB (24 GB of text)"] = bomb

    widest = folder / "widest" / "run.txt"
    widest.parent.mkdir()
    statements = "".join(f'os.environ["TORCHINDUCTOR_X{i}"] = "1"\n' for i in range(19_999))
    widest.write_text(f"import os\n{statements}{RULE}\n{ENVIRONMENT}{RULE}\n{step_lines(50_000)}")
    cases["20,000 compiler statements, 50,000 step lines"] = widest

    boundaries = folder / "boundaries" / "run.txt"
    boundaries.parent.mkdir()
    code = "".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(2_000))
    fakes = "".join(f'{code}N{i} = """\n{RULE}\nRunning Python 3.12\n"""\n' for i in range(8))
    boundaries.write_text(f"import os\n{fakes}{RULE}\n{ENVIRONMENT}{RULE}\n{step_lines(1000)}")
    cases["8 fake boundaries after 60 KB of code each"] = boundaries

    one_string = folder / "one-string" / "run.txt"
    one_string.parent.mkdir()
    fakes = "".join(f"{RULE}\nRunning Python 3.12\n" + "x = 1\n" * 1_500 for _ in range(64))
    one_string.write_text(f'import os\nNOTE = """\n{fakes}"""\n{RULE}\n{ENVIRONMENT}{RULE}\n{step_lines(1000)}')
    cases["64 fake boundaries inside one string of a 600 KB source"] = one_string

    loose = folder / "loose" / "run.txt"
    loose.parent.mkdir()
    loose.write_text(step_lines(50_000, "step:{i}/{n} lr:0.1 train_time:{i}ms step_avg:1.00ms\n"))
    cases["50,000 step lines read one by one"] = loose
    return cases


def measure(paths: list[Path], cwd: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, paths)], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        return {"seconds": float("nan"), "mib": float("nan"), "outcome": f"crashed: {last[-160:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="only the cases whose name holds this text")
    only = parser.parse_args(argv).only
    archive = unpack_archive()
    worst_seconds = worst_mib = 0.0
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        cases: list[tuple[str, list[Path], Path]] = []
        for name, path in bound_cases(root).items():
            cases.append((name, [path], ROOT))
        for attack in ATTACKS:
            case = attack.build(Workspace(archive, root / attack.name))
            cases.append((f"{attack.family}: {attack.name}", case.paths, case.cwd or ROOT))
        print(f"{'seconds':>8} {'MiB':>6}  case -> outcome")
        started = time.perf_counter()
        for name, paths, cwd in cases:
            if only not in name:
                continue
            figures = measure(paths, cwd)
            seconds, mib = float(figures["seconds"]), float(figures["mib"])  # type: ignore[arg-type]
            worst_seconds, worst_mib = max(worst_seconds, seconds), max(worst_mib, mib)
            over = " OVER THE BOUND" if seconds > BOUND_SECONDS or mib > BOUND_MIB else ""
            print(f"{seconds:8.2f} {mib:6.0f}  {name} -> {figures['outcome']}{over}", flush=True)
    print(
        f"worst: {worst_seconds:.2f} s, {worst_mib:.0f} MiB (bounds {BOUND_SECONDS} s, {BOUND_MIB} MiB); "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    return 0 if worst_seconds <= BOUND_SECONDS and worst_mib <= BOUND_MIB else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
