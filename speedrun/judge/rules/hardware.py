"""The hardware: 8 NVIDIA H100 SXM GPUs, by the exact name nvidia-smi gives them, from the track file (SR008).

A name that merely contains "H100" is not enough: an H100 PCIe or an H100 NVL is another, slower or faster,
GPU. The names accepted are the track's `gpu_names` (nvidia-smi calls the H100 SXM 80 GB "NVIDIA H100 80GB
HBM3", the name of every H100 log of the archive). The count is the world size the run used: our trainer's
`world_size` line where there is one, else the GPUs nvidia-smi lists.
"""

from __future__ import annotations

from collections import defaultdict

from speedrun.judge.rules.base import Rule, RuleInput
from speedrun.judge.runlog import RunLog
from speedrun.judge.verdict import Check, Status

ID = "SR008"
H100_SXM = ("NVIDIA H100 80GB HBM3",)


def _machine(run: RunLog) -> str:
    """What a run trained on, as the reports show it: "8x NVIDIA H100 80GB HBM3", "no GPU", "unknown"."""
    if run.gpus is None:
        return "unknown"
    if not run.gpus.names:
        return "no GPU (nvidia-smi not available)"
    used = run.world_size or run.gpus.count
    return f"{used}x {run.gpus.model}"


def check_hardware(ri: RuleInput) -> Check:
    """8 GPUs of the exact models the track names, as many as the run used; anything else asks for a review, and
    so does a log without an nvidia-smi block.

    nvidia-smi lists the machine's GPUs; where the log says how many processes trained (our trainer's
    `world_size` line), that is the count used, so 1 GPU of an 8-GPU machine is not taken for 8.
    """
    names = tuple(ri.parameter(ID, "gpu_names", H100_SXM))
    want_count = ri.track.gpu_count
    found: dict[str, list[RunLog]] = defaultdict(list)
    good: set[str] = set()
    for run in ri.runs:
        machine = _machine(run)
        found[machine].append(run)
        gpus = run.gpus
        if gpus and gpus.names and (run.world_size or gpus.count) == want_count and set(gpus.names) <= set(names):
            good.add(machine)
    evidence = tuple(r.at(r.gpus.line) for rs in found.values() for r in rs[:1] if r.gpus)
    figures = {"found": {k: len(v) for k, v in found.items()}}
    expected = f"{want_count}x {' or '.join(names)}"
    if set(found) == good:
        return Check("hardware", Status.PASS, f"{', '.join(found)} as expected", evidence, figures, ID)
    parts = ", ".join(f"{k} in {len(v)} run(s) (e.g. {v[0].path.name})" for k, v in found.items())
    detail = f"expected {expected}, found {parts}".replace("unknown in", "no nvidia-smi block in")
    status = Status.UNCHECKED if set(found) == {"unknown"} else Status.WARN
    return Check("hardware", status, detail, evidence, figures, ID)


HARDWARE = Rule(
    ID,
    "hardware",
    check_hardware,
    "8 GPUs named exactly as the track's `gpu_names` in the nvidia-smi block (`NVIDIA H100 80GB HBM3`, the H100 "
    "SXM; not an H100 PCIe or NVL, nor a name merely containing H100), as many as the processes that trained; "
    "anything else, or no block, asks for a review naming what was found",
)
