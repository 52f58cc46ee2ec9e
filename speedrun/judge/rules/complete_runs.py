"""A run's result is its val loss at its final step: a log that ends before it is not a result (SR010).

Such runs are listed and left out of every statistic; the verdict then asks for a review rather than quietly
reading the run at an earlier step. A group with no complete run at all cannot be judged (bad input).
"""

from __future__ import annotations

from speedrun.judge.rules.base import Rule, RuleInput, cite
from speedrun.judge.runlog import Evidence, RunLog
from speedrun.judge.verdict import Check, Status

ID = "SR010"


def why_incomplete(run: RunLog) -> str | None:
    """Why a run is not a result, or None when its last val loss is at its final step."""
    final = run.final
    last = run.steps[-1] if run.steps else None
    if final is None:
        where = f" (last step line {last.step}/{last.total_steps})" if last else ""
        return f"no val loss line{where}"
    total = final.total_steps or (last.total_steps if last else None)
    if last is not None and last.step > final.step:
        return f"last val loss at step {final.step}, but the log goes on to step {last.step}/{total}"
    if total and final.step < total:
        return f"last val loss at step {final.step} of {total}: the log ends there"
    return None


def incomplete_evidence(run: RunLog) -> Evidence:
    last = run.steps[-1] if run.steps else None
    return run.at(last.line) if last else Evidence(run.path)


def check_complete_runs(ri: RuleInput) -> Check:
    """Every run reaches its final val line; the others are listed, left out of the statistics, and reviewed."""
    if not ri.incomplete:
        return Check(
            "complete runs",
            Status.PASS,
            f"{'all ' if len(ri.runs) != 1 else ''}{len(ri.runs)} run{'s' if len(ri.runs) != 1 else ''} "
            "end with their final val line",
            rule_id=ID,
        )
    cited = tuple(incomplete_evidence(r) for r in ri.incomplete)
    first = ri.incomplete[0]
    detail = (
        f"{len(ri.incomplete)} of {len(ri.runs) + len(ri.incomplete)} runs are not results and are left out: "
        f"{first.path.name}: {why_incomplete(first)}"
        + (f" (+{len(ri.incomplete) - 1} more)" if len(ri.incomplete) > 1 else "")
        + f"; at {cite(cited)}"
    )
    return Check("complete runs", Status.WARN, detail, cited, {"incomplete": [str(r.path) for r in ri.incomplete]}, ID)


COMPLETE_RUNS = Rule(
    ID,
    "complete runs",
    check_complete_runs,
    "each run's log reaches its final val line; one that ends early is listed, left out of the statistics, "
    "and asks for a review",
)
