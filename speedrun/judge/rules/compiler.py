"""Rule 3, compiler flags: no `torch._inductor.config` or `torch.compile` options beyond the track's (SR004)."""

from __future__ import annotations

from speedrun.judge.compile_flags import ALLOWED, SETTING, find_compile_flags
from speedrun.judge.rules.base import Rule, RuleInput, cite, source_evidence
from speedrun.judge.runlog import Evidence
from speedrun.judge.verdict import Check, Status

ID = "SR004"


def check_compile_flags(ri: RuleInput) -> Check:
    """No torch._inductor.config writes or torch.compile options beyond the ones the track allows.

    Explicit settings fail; code that may reach the compiler unseen (exec of computed code, computed names,
    the compiler's config handed around, dynamo settings that change compiled code, a source that is not
    Python as a whole) cannot be confirmed, and asks for a review.
    """
    allowed = frozenset(ri.parameter(ID, "allowed_compile_options", ()))
    with_source = [r for r in ri.runs if r.source]
    if not with_source:
        return Check("compile flags", Status.UNCHECKED, "no embedded source in the logs to read flags from", rule_id=ID)
    banned: list[tuple[Evidence, str]] = []
    unconfirmed: list[tuple[Evidence, str]] = []
    permitted: set[str] = set()
    seen: set[str] = set()
    for run in with_source:
        if run.source in seen:  # identical sources (the usual case) give identical flags
            continue
        seen.add(run.source or "")
        if run.source_problem is not None:
            unconfirmed.append((run.at(run.source_problem_line), f"source not Python: {run.source_problem}"))
        for flag in find_compile_flags(run.source or "", allowed):
            if flag.kind == ALLOWED:
                permitted.add(flag.name)
            elif flag.kind == SETTING:
                banned.append((source_evidence(run, flag.line), f"{flag.how} {flag.name}"))
            elif not (flag.how == "unparseable source" and run.source_problem is not None):
                unconfirmed.append((source_evidence(run, flag.line), f"{flag.how}: {flag.name}"))
    if banned:
        names = sorted({what for _, what in banned})
        cited = tuple(ev for ev, _ in banned)
        detail = f"not allowed on the {ri.track.alias} track: {', '.join(names)} at {cite(cited)}"
        return Check("compile flags", Status.FAIL, detail, cited, {"banned": names}, ID)
    if unconfirmed:
        names = sorted({what for _, what in unconfirmed})
        cited = tuple(ev for ev, _ in unconfirmed)
        detail = f"cannot confirm the compiler is left as the rules ask: {'; '.join(names)} at {cite(cited)}"
        return Check("compile flags", Status.WARN, detail, cited, {"unconfirmed": names}, ID)
    extra = f" (allowed here: {', '.join(sorted(permitted))})" if permitted else ""
    return Check(
        "compile flags", Status.PASS, f"no extra compiler flags{extra}", (), {"allowed_used": sorted(permitted)}, ID
    )


COMPILE_FLAGS = Rule(
    ID,
    "compile flags",
    check_compile_flags,
    "no `torch._inductor.config` writes, `config.patch(...)`, `TORCHINDUCTOR_*` variables or `torch.compile` "
    "options other than `dynamic` and `fullgraph`, found with `ast` (comments and strings do not count) through "
    "aliases, literal lookups (`getattr`, `importlib`, `sys.modules`, `__dict__`) and literal `exec`; what "
    "cannot be confirmed (computed names, `exec` of computed code, dynamo settings that change compiled code, a "
    "source that is not Python) asks for a review; the track's `allowed_compile_options` (medium: "
    "`coordinate_descent_tuning`) excepted",
)
