"""The hardware: 8x H100, from the track file (SR008)."""

from __future__ import annotations

from collections import defaultdict

from speedrun.judge.rules.base import Rule, RuleInput
from speedrun.judge.runlog import RunLog
from speedrun.judge.verdict import Check, Status

ID = "SR008"


def check_hardware(ri: RuleInput) -> Check:
    """8x H100 expected (from the track file); anything else asks for a review, and so does no nvidia-smi block.

    nvidia-smi lists the machine's GPUs; where the log says how many processes trained (our trainer's
    `world_size` line), that is the count used, so 1 GPU of an 8-GPU machine is not taken for 8.
    """
    want_model, want_count = ri.track.gpu_model, ri.track.gpu_count
    found: dict[str, list[RunLog]] = defaultdict(list)
    for run in ri.runs:
        used = run.world_size or (run.gpus.count if run.gpus else 0)
        found[f"{used}x {run.gpus.model}" if run.gpus and run.gpus.count else "unknown"].append(run)
    good = [k for k in found if k != "unknown" and k.startswith(f"{want_count}x ") and want_model in k and "+" not in k]
    evidence = tuple(r.at(r.gpus.line) for rs in found.values() for r in rs[:1] if r.gpus)
    figures = {"found": {k: len(v) for k, v in found.items()}}
    if set(found) == set(good):
        return Check("hardware", Status.PASS, f"{', '.join(found)} as expected", evidence, figures, ID)
    parts = ", ".join(f"{k} in {len(v)} run(s) (e.g. {v[0].path.name})" for k, v in found.items())
    detail = f"expected {want_count}x {want_model}, found {parts}".replace("unknown in", "no nvidia-smi block in")
    status = Status.UNCHECKED if set(found) == {"unknown"} else Status.WARN
    return Check("hardware", status, detail, evidence, figures, ID)


HARDWARE = Rule(
    ID,
    "hardware",
    check_hardware,
    "8x H100 from the nvidia-smi block (or the processes that trained); anything else, or no block, asks for a "
    "review naming what was found",
)
