"""Our trainer beside the record script it follows: same shards, same steps, same machine, one table.

    python benchmarks/versus_record.py --record-log RECORD_LOG [--track small] [--recipe NAME] [--steps 120]
        [--val-every 40] [--nproc-per-node 1] [--data-dir DIR] [--out DIR] [--deadline SECONDS]
        [--attention fa3|flex] [--cache-root DIR] [--only record|ours|table]

Writes synthetic shards of the `zipf` language (hard enough that a wrong recipe shows; kept between calls in
--data-dir), then runs `speedrun reproduce RECORD_LOG` (the record's own script, from its published log) and
`speedrun train --track TRACK` for the same number of steps with the same validation points. With twice the
processes' GPUs visible the two run at once, the record on the first GPUs and ours on the next; otherwise one
after the other. Each program's output goes to OUT/record.out and OUT/ours.out, its logs to OUT/record/ and
OUT/ours/. Then the table: val loss at every checkpoint both reached, ours minus the record's, each program's
step_avg and the ratio, and the ms per step between checkpoints (the steady state, past the first steps),
all read from the two run logs with the judge's parser. For a staged recipe (2026-05), a second table: each
batch stage's ms a step and tokens a second on each side, from the step lines at the stage's ends, and the
whole run's. Both tables are also written to OUT/table.md.

--deadline stops both programs (Ctrl-C, so each sets its partial log aside) that many seconds after the start
and prints the table of what they reached: use it to fit a session limit. --only runs one side, or only the
table from logs already in OUT, so the two programs can also run in separate sessions on one GPU.
--cache-root keeps each program's compiled kernels (inductor's and Triton's caches) in DIR/record and DIR/ours,
so that a later call can start from one side's cache alone.

Small track: against record 28 (2025-08-23_SparseAttnGate), which runs on 1, 2, 4 or 8 GPUs; with
`--recipe 2026-05`, against record 84 (2026-05-19_FP8MLPUpProj), whose Flash Attention 3 needs `--attention flex`
on machines without the Hugging Face Hub (both programs then attend through the same FlexAttention stand-in).
Both sides shorten a staged schedule the same way: `--steps N` steps in all, the extension kept in proportion
(see `shortened_split`). Medium track:
against medium record 8 (2025-04-22_Record8), which asserts 8 GPUs, so on an 8-GPU machine only:
`--track medium --nproc-per-node 8` (one program after the other).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from speedrun.errors import BadInput  # noqa: E402
from speedrun.judge.parse import parse_log  # noqa: E402
from speedrun.judge.runlog import RunLog  # noqa: E402
from speedrun.trainer.config import StagedSchedule, TrainOptions, get_config  # noqa: E402
from speedrun.trainer.stages import boundaries  # noqa: E402

TOKENS_PER_SHARD = 25_000_000
# the records' validation loaders read a look-ahead window past the 10,485,760 tokens they validate on
VAL_SHARD_TOKENS = 10_485_760 + 2**20


def shard_count(track: str, steps: int, recipe: str | None = None) -> int:
    """Training shards enough for `steps` steps of the record's loader, which skips the cut tail of the document
    at the end of each sequence (under 900 tokens on average in the zipf language, against 48Ki per sequence:
    10% is ample) and the last look-ahead window of each shard, and which stops, rather than starting over, when
    the shards run out. A staged recipe is counted at its largest batch, and its document cap skips the rest of
    every longer document (a third or more of the zipf language's tokens under a cap of 896): 1.6 times."""
    config = get_config(track, recipe=recipe)
    batch = config.global_batch_tokens
    margin = 1.1
    if isinstance(config.schedule, StagedSchedule):
        batch, margin = max(stage.batch_tokens for stage in config.schedule.stages), 1.6
    usable = TOKENS_PER_SHARD - 2 * batch - 1
    return max(2, math.ceil(steps * batch * margin / usable))


def write_shards(data_dir: Path, track: str, steps: int, seed: int, recipe: str | None = None) -> None:
    command = [sys.executable, "-m", "speedrun", "data", "synthetic", "--dir", str(data_dir), "--language", "zipf"]
    command += ["--train-shards", str(shard_count(track, steps, recipe)), "--tokens-per-shard", str(TOKENS_PER_SHARD)]
    command += ["--val-tokens", str(VAL_SHARD_TOKENS), "--seed", str(seed)]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env=_env(None, "data", None))
    print(f"shards ready in {data_dir} ({time.perf_counter() - started:.0f} s)", flush=True)


def _env(gpus: list[int] | None, side: str, cache_root: Path | None) -> dict[str, str]:
    # the tree first, then whatever the caller put on the path (packages installed with pip --target)
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    if cache_root is not None:  # each program's compiled kernels apart, so each side's cache can be carried alone
        env["TORCHINDUCTOR_CACHE_DIR"] = str(cache_root / side / "inductor")
        env["TRITON_CACHE_DIR"] = str(cache_root / side / "triton")
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
    return env


def commands(args: argparse.Namespace) -> dict[str, list[str]]:
    common = ["--steps", str(args.steps), "--val-every", str(args.val_every), "--data-dir", str(args.data_dir)]
    nproc = ["--nproc-per-node", str(args.nproc_per_node)]
    speedrun = [sys.executable, "-m", "speedrun"]
    attention = ["--attention", args.attention]
    recipe = ["--recipe", args.recipe] if args.recipe else []
    recipe += ["--attention", args.ours_attention] if args.ours_attention else []
    return {
        "record": [
            *speedrun,
            "reproduce",
            str(args.record_log),
            *nproc,
            *common,
            *attention,
            "--out",
            str(args.out / "record"),
        ],
        "ours": [
            *speedrun,
            "train",
            "--track",
            args.track,
            *recipe,
            *nproc,
            *common,
            "--log-dir",
            str(args.out / "ours"),
        ],
    }


def visible_gpus() -> int:
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    count = sum(line.startswith("GPU ") for line in listed.splitlines())
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        count = min(count, len([g for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]))
    return count


def run(sides: list[str], args: argparse.Namespace) -> dict[str, int | None]:
    """Run the sides, at once when there are GPUs for both, else in turn; stop them all at the deadline.
    Returns each side's exit code (None: stopped at the deadline)."""
    n = args.nproc_per_node
    together = len(sides) == 2 and visible_gpus() >= 2 * n
    gpus = {"record": list(range(n)), "ours": list(range(n, 2 * n))} if together else {s: None for s in sides}
    deadline = args.started + args.deadline if args.deadline else math.inf
    codes: dict[str, int | None] = {}
    batches = [sides] if together else [[s] for s in sides]
    for batch in batches:
        running = {}
        for side in batch:
            output = open(args.out / f"{side}.out", "w", encoding="utf-8")  # noqa: SIM115 (closed below)
            where = f"GPU(s) {gpus[side]}" if gpus[side] is not None else "the visible GPU(s)"
            print(f"{side}: {' '.join(commands(args)[side])}  on {where}, output in {output.name}", flush=True)
            process = subprocess.Popen(
                commands(args)[side],
                cwd=ROOT,
                env=_env(gpus[side], side, args.cache_root),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so that the deadline can Ctrl-C its whole process group
            )
            running[side] = (process, output)
        while running:
            for side, (process, output) in list(running.items()):
                if process.poll() is not None:
                    codes[side] = process.returncode
                    output.close()
                    del running[side]
                    print(f"{side}: exit code {process.returncode} at {time.perf_counter() - args.started:.0f} s")
            if running and time.perf_counter() > deadline:
                for side, (process, _) in running.items():
                    print(f"{side}: deadline reached, stopping it (its partial log is kept)", flush=True)
                    os.killpg(process.pid, signal.SIGINT)
                for side, (process, output) in running.items():
                    try:
                        process.wait(timeout=8)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait()
                    output.close()
                    codes[side] = None
                running = {}
            time.sleep(1)
    return codes


def newest_log(folder: Path) -> RunLog | None:
    """The newest run log below `folder`, finished or set aside (`.interrupted`, `.failed`), or still in the
    record's work folder when its run was cut short."""
    patterns = ("*.txt", "*.txt.interrupted", "*.txt.failed", ".reproduce/*/logs/**/*.txt")
    found = [p for pattern in patterns for p in folder.glob(pattern) if p.is_file()]
    if not found:
        return None
    newest = max(found, key=lambda p: p.stat().st_mtime)
    try:
        return parse_log(newest)
    except BadInput as e:  # stopped before its first step line
        print(f"{newest}: {e.problem}")
        return None


def table(record: RunLog, ours: RunLog) -> str:
    """Markdown: val loss side by side at each checkpoint both reached, the difference, step_avg and its ratio,
    and the ms per step since the previous checkpoint."""
    mine = {s.step: s for s in ours.val_steps}
    theirs = {s.step: s for s in record.val_steps}
    rows = [
        "| step | record val | ours val | ours - record | record step_avg | ours step_avg | ours / record "
        "| record ms/step since last | ours ms/step since last |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    previous = None
    for step in sorted(mine.keys() & theirs.keys()):
        a, b = theirs[step], mine[step]
        assert a.val_loss is not None and b.val_loss is not None
        ratio = f"{b.step_avg_ms / a.step_avg_ms:.3f}" if step and a.step_avg_ms and b.step_avg_ms else ""
        since = ["", ""]
        if previous is not None and step > previous:
            for i, run in enumerate((theirs, mine)):
                t0, t1 = run[previous].train_time_ms, run[step].train_time_ms
                if t0 is not None and t1 is not None:
                    since[i] = f"{(t1 - t0) / (step - previous):.1f}"
        avg = [f"{s.step_avg_ms:.1f}" if step and s.step_avg_ms is not None else "" for s in (a, b)]
        rows.append(
            f"| {step} | {a.val_loss:.4f} | {b.val_loss:.4f} | {b.val_loss - a.val_loss:+.4f} | {avg[0]} | {avg[1]} "
            f"| {ratio} | {since[0]} | {since[1]} |"
        )
        previous = step
    return "\n".join(rows)


def batch_spans(ours: RunLog) -> list[tuple[int, int, int]]:
    """[start, end) and tokens a step of each stretch of steps with one batch size, in the schedule ours ran
    (its recipe, preset and step count from its config line; the record ran the same shortened schedule), or
    none for a recipe without stages."""
    config = ours.config or {}
    if "stages" not in (config.get("schedule") or {}):
        return []
    options = TrainOptions(
        track=config["track"], preset=config["preset"], recipe=config["recipe"], steps=config["num_iterations"]
    )
    schedule = options.resolve_config().schedule
    assert isinstance(schedule, StagedSchedule)
    spans: list[tuple[int, int, int]] = []
    for stage, (start, end) in zip(schedule.stages, boundaries(schedule), strict=True):
        if spans and spans[-1][2] == stage.batch_tokens:  # the extension: longer windows, the same batch
            start = spans.pop()[0]
        spans.append((start, end, stage.batch_tokens))
    return spans


def stage_table(record: RunLog, ours: RunLog) -> str:
    """Markdown: each batch stage's ms a step and tokens a second on each side, and the whole run's (all the
    run's GPUs together), from the train_time of the step lines at the stages' ends; empty for an unstaged
    recipe."""
    spans = batch_spans(ours)
    if not spans:
        return ""
    times = [{s.step: s.train_time_ms for s in run.steps if s.train_time_ms is not None} for run in (record, ours)]
    for t in times:
        t.setdefault(0, 0.0)
    rows = [
        "| batch stage | steps | tokens a step | record ms a step | record tokens/s | ours ms a step | ours tokens/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cells(start: int, end: int, tokens: int, per_step: bool) -> list[str]:
        out = []
        for t in times:
            if start in t and end in t and t[end] > t[start]:
                ms = t[end] - t[start]
                out += [f"{ms / (end - start):.1f}" if per_step else f"{ms / 1000:.1f} s", f"{tokens / ms:.1f}k"]
            else:
                out += ["", ""]
        return out

    for number, (start, end, batch) in enumerate(spans, 1):
        figures = cells(start, end, (end - start) * batch, per_step=True)
        rows.append(f"| {number} | {start + 1}-{end} | {batch:,} | " + " | ".join(figures) + " |")
    total = sum((end - start) * batch for start, end, batch in spans)
    figures = cells(0, spans[-1][1], total, per_step=False)
    rows.append(f"| all | 1-{spans[-1][1]} | {total:,} in all | " + " | ".join(figures) + " |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record-log", type=Path, help="the published log of the record the recipe follows")
    parser.add_argument("--track", default="small", help="small (against record 28) or medium (medium record 8)")
    parser.add_argument("--recipe", default=None, help="our recipe (default: the track's); 2026-05: against record 84")
    parser.add_argument("--attention", choices=("fa3", "flex"), default="fa3", help="passed to speedrun reproduce")
    parser.add_argument(
        "--ours-attention",
        choices=("flex", "fa4"),
        help="2026-05: our attention kernel (speedrun train --attention); default auto, fa4 where it runs",
    )
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--val-every", type=int, default=40)
    parser.add_argument("--nproc-per-node", type=int, default=1, help="processes of each program (medium: 8)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".cache" / "versus-shards")
    parser.add_argument("--out", type=Path, default=Path("versus-out"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic language")
    parser.add_argument("--deadline", type=float, default=0, help="stop both programs after this many seconds")
    parser.add_argument("--cache-root", type=Path, help="compile caches of each side in DIR/record and DIR/ours")
    parser.add_argument(
        "--only",
        choices=("record", "ours", "table", "data"),
        help="run one side, only the table, or only write the shards",
    )
    parser.add_argument(
        "--reuse-data", action="store_true", help="use the shards already in --data-dir (written by an earlier call)"
    )
    args = parser.parse_args()
    args.started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    args.out = args.out.resolve()
    args.data_dir = args.data_dir.resolve()

    if args.only != "table":
        if args.only in (None, "record") and (args.record_log is None or not args.record_log.is_file()):
            parser.error(f"--record-log must name the record's published log file (got {args.record_log})")
        if args.only in (None, "record"):
            args.record_log = args.record_log.resolve()
        if not args.reuse_data:
            write_shards(args.data_dir, args.track, args.steps, args.seed, args.recipe)
        if args.only == "data":
            return 0
        sides = [args.only] if args.only else ["record", "ours"]
        codes = run(sides, args)
        name = f"exit_codes_{args.only}.json" if args.only else "exit_codes.json"  # sides run apart don't collide
        (args.out / name).write_text(json.dumps(codes) + "\n", encoding="utf-8")

    record, ours = newest_log(args.out / "record"), newest_log(args.out / "ours")
    if record is None or ours is None:
        missing = " and ".join(name for name, log in (("record", record), ("ours", ours)) if log is None)
        print(f"no {missing} log under {args.out} yet: nothing to compare")
        return 1
    text = f"record: {record.path}\nours: {ours.path}\n\n{table(record, ours)}\n"
    stages = stage_table(record, ours)
    if stages:
        text += f"\n{stages}\n"
    (args.out / "table.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
