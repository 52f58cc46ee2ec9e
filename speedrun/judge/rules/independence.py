"""Runs are independent samples (SR009): a copied log, or one run logged twice, counts once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from speedrun.judge.rules.base import Rule, RuleInput, final_evidence
from speedrun.judge.runlog import Evidence, RunLog
from speedrun.judge.verdict import Check, Status

ID = "SR009"
MIN_TRAJECTORY_POINTS = 3  # identical trajectories only count as copies when they have this many val points


def copies(runs: Iterable[RunLog]) -> list[list[RunLog]]:
    """Groups of runs that are one run counted several times: byte-identical logs or identical val trajectories."""
    by_bytes: dict[str, list[RunLog]] = defaultdict(list)
    for run in runs:
        by_bytes[run.sha256].append(run)
    found: list[list[RunLog]] = []
    by_trajectory: dict[tuple[tuple[int, float | None], ...], list[RunLog]] = defaultdict(list)
    for group in by_bytes.values():
        trajectory = tuple((s.step, s.val_loss) for s in group[0].val_steps)
        if len(trajectory) >= MIN_TRAJECTORY_POINTS:
            by_trajectory[trajectory].extend(group)
        elif len(group) > 1:
            found.append(group)
    return found + [group for group in by_trajectory.values() if len(group) > 1]


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
            what = "byte-identical logs" if same_bytes else "identical val-loss trajectories"
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
    "byte-identical logs or identical val-loss trajectories fail and count once in the statistics; a repeated "
    "seed asks for a review",
)
