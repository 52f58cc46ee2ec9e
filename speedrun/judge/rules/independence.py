"""Runs are independent samples (SR009): a copied log, or one run logged twice, counts once.

A copy need not be exact: a log copied with one val loss nudged, written as `nan`, or its times shifted is the
same run. Two runs are one when their val-loss curves agree at every val step they share, each value within
COPY_TOLERANCE (NaN agreeing with anything, since a NaN cannot disagree), over at least MIN_TRAJECTORY_POINTS
steps after step 0. Independent runs of the archive differ by 0.0008 or more somewhere on their curves (the
closest pair of its 970 runs); the loss is printed to 0.0001.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

from speedrun.judge.rules.base import Rule, RuleInput, final_evidence
from speedrun.judge.runlog import Evidence, RunLog
from speedrun.judge.verdict import Check, Status

ID = "SR009"
MIN_TRAJECTORY_POINTS = 3  # agreeing curves count as one run only with this many val points after step 0
COPY_TOLERANCE = 0.0003  # val losses this close at every shared step: the same run


def _curve(run: RunLog) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """A run's val-loss curve after step 0 (where every run starts alike): its steps, and its losses."""
    points = [(s.step, s.val_loss) for s in run.val_steps if s.step > 0 and s.val_loss is not None]
    return tuple(p[0] for p in points), tuple(p[1] for p in points)


def _same_curve(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two curves on the same steps agree everywhere, NaN agreeing with anything, over enough finite
    points to say so."""
    agreeing = 0
    for x, y in zip(a, b, strict=True):
        if math.isnan(x) or math.isnan(y):
            continue
        if not abs(x - y) <= COPY_TOLERANCE:
            return False
        agreeing += 1
    return agreeing >= MIN_TRAJECTORY_POINTS


def copies(runs: Iterable[RunLog]) -> list[list[RunLog]]:
    """Groups of runs that are one run counted several times: byte-identical logs, or val-loss curves that
    agree at every step within COPY_TOLERANCE. Each group lists its runs in the order given."""
    ordered = list(runs)
    parent = list(range(len(ordered)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    first_with_bytes: dict[str, int] = {}
    by_grid: dict[tuple[int, ...], list[tuple[int, tuple[float, ...]]]] = defaultdict(list)
    for i, run in enumerate(ordered):
        if run.sha256 in first_with_bytes:
            join(first_with_bytes[run.sha256], i)
            continue
        first_with_bytes[run.sha256] = i
        steps, losses = _curve(run)
        if len(steps) >= MIN_TRAJECTORY_POINTS:
            by_grid[steps].append((i, losses))
    for curves in by_grid.values():
        for k, (i, a) in enumerate(curves):
            for j, b in curves[k + 1 :]:
                if _same_curve(a, b):
                    join(i, j)
    groups: dict[int, list[RunLog]] = defaultdict(list)
    for i, run in enumerate(ordered):
        groups[root(i)].append(run)
    return [group for group in groups.values() if len(group) > 1]


def independent_runs(runs: tuple[RunLog, ...]) -> tuple[RunLog, ...]:
    """The runs with each group of copies counted once (its first file kept)."""
    dropped = {id(r) for group in copies(runs) for r in group[1:]}
    return tuple(r for r in runs if id(r) not in dropped)


def check_independence(ri: RuleInput) -> Check:
    """Runs must be independent samples: copies fail, a repeated seed warns; copies count once in the stats."""
    duplicated = copies(ri.runs)
    if duplicated:
        parts = []
        cited: list[Evidence] = []
        for group in duplicated:
            same_bytes = len({r.sha256 for r in group}) == 1
            what = "byte-identical logs" if same_bytes else f"val-loss curves equal within {COPY_TOLERANCE}"
            parts.append(f"{what}: {', '.join(r.path.name for r in group)}")
            cited.extend(final_evidence(r) for r in group)
        detail = f"{'; '.join(parts)} (counted once: n={len(ri.independent)} of {len(ri.runs)})"
        return Check(
            "independence",
            Status.FAIL,
            detail,
            tuple(cited),
            {"copies": [[str(r.path) for r in g] for g in duplicated]},
            ID,
        )
    seeds: dict[int, list[RunLog]] = defaultdict(list)
    for run in ri.runs:
        if run.seed is not None:
            seeds[run.seed].append(run)
    repeated = {seed: rs for seed, rs in seeds.items() if len(rs) > 1}
    if repeated:
        parts = [f"seed {seed} in {', '.join(r.path.name for r in rs)}" for seed, rs in repeated.items()]
        cited = [r.at(r.seed_line) for rs in repeated.values() for r in rs]
        return Check("independence", Status.WARN, f"repeated seed: {'; '.join(parts)}", tuple(cited), rule_id=ID)
    return Check(
        "independence", Status.PASS, f"{len(ri.runs)} distinct run{'s' if len(ri.runs) != 1 else ''}", rule_id=ID
    )


INDEPENDENCE = Rule(
    ID,
    "independence",
    check_independence,
    "byte-identical logs, or val-loss curves that agree within 0.0003 at every val step (NaN agreeing with "
    "anything; 3 steps after step 0 at least), are one run: they fail, are named, and count once in the "
    "statistics; a repeated seed asks for a review",
)
