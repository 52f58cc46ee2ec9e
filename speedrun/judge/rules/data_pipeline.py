"""Rule 1, the data pipeline: the token streams must not change (SR001).

The judge hashes the syntax tree of the data-loading code embedded in the logs (see `judge.pipeline`) and
compares it with the track's canonical hash (our trainer) or the prior record's, pinned in its record.toml
(upstream logs; never a hash read from a log, which the submission could have written). A changed loader may
still serve the same tokens, so a change asks for a review; only our own trainer's data.py, whose canonical
hash is pinned, can fail outright, and so can its documents.py, which cuts the 2026-05 recipe's batches of
whole documents (a second pin: a run of that recipe must embed it). Our trainer's logs also say which shards
were read (`judge.fineweb`): anything but FineWeb's, or a log that does not say, asks for a review.
"""

from __future__ import annotations

from collections import defaultdict

from speedrun.judge.embedded import sections
from speedrun.judge.fineweb import UNKNOWN, DataFacts, data_facts
from speedrun.judge.pipeline import (
    TRAINER_DOCUMENTS_SECTION,
    data_pipeline_hash,
    data_pipeline_line,
    is_trainer_source,
    source_hash,
)
from speedrun.judge.rules.base import Rule, RuleInput, source_evidence, worst
from speedrun.judge.runlog import Evidence, RunLog
from speedrun.judge.verdict import Check, Status

ID = "SR001"
RECIPES_WITH_DOCUMENT_LOADER = frozenset({"2026-05"})  # the trainer's recipes whose batches documents.py cuts


def check_data_pipeline(ri: RuleInput) -> Check:
    """The data-loading code hashes to the track's canonical hash (our trainer) or the prior record's pinned one
    (upstream); our trainer's logs read FineWeb's shards, as their data line says."""
    code = _check_code(ri)
    shards = _check_shards(ri)
    if shards is None:
        return code
    status = worst(code.status, shards.status)
    parts = [c.detail for c in sorted((shards, code), key=lambda c: c.status is not status)]
    figures = {**code.figures, **shards.figures}
    return Check("data pipeline", status, "; ".join(parts), code.evidence + shards.evidence, figures, ID)


def _check_shards(ri: RuleInput) -> Check | None:
    """What our trainer's logs say of the shards they read; None when no run is our trainer's."""
    found: dict[tuple[str, ...], tuple[DataFacts, list[RunLog]]] = {}
    for run in ri.runs:
        facts = data_facts(run)
        if facts is not None:
            found.setdefault((facts.kind, *facts.problems), (facts, []))[1].append(run)
    if not found:
        return None
    cited: tuple[Evidence, ...] = tuple(facts.evidence for facts, _ in found.values())
    kinds = sorted({facts.kind for facts, _ in found.values()})
    figures: dict[str, object] = {"data": kinds}
    bad = [(facts, runs) for facts, runs in found.values() if not facts.is_fineweb]
    if not bad:
        detail = f"FineWeb shards, by their names, token counts and headers (data line at {cited[0]})"
        return Check("data pipeline", Status.PASS, detail, cited, figures, ID)
    parts = [f"{len(runs)} run(s) (e.g. {runs[0].path.name}): {facts.describe()}" for facts, runs in bad]
    if all(facts.kind == UNKNOWN for facts, _ in bad):
        detail = f"cannot confirm the runs read FineWeb: {'; '.join(parts)}"
        return Check("data pipeline", Status.UNCHECKED, detail, cited, figures, ID)
    detail = f"not FineWeb's tokens, so not a record: {'; '.join(parts)}"
    return Check("data pipeline", Status.WARN, detail, cited, figures, ID)


def _check_code(ri: RuleInput) -> Check:
    if not any(run.source for run in ri.runs):
        status = Status.NOT_APPLICABLE if ri.first_of_track else Status.UNCHECKED
        return Check("data pipeline", status, "no embedded source in the logs", rule_id=ID)
    hashes: dict[str, list[RunLog]] = defaultdict(list)
    for run in ri.runs:
        if run.source:
            digest = data_pipeline_hash(run.source, run.sectioned)
            if digest:
                hashes[digest].append(run)
    if not hashes:
        detail = "no data-loading code found in the embedded source: the token streams cannot be compared"
        return Check("data pipeline", Status.UNCHECKED, detail, rule_id=ID)
    evidence = tuple(
        source_evidence(rs[0], data_pipeline_line(rs[0].source or "", rs[0].sectioned)) for rs in hashes.values()
    )
    figures: dict[str, object] = {"sha256": sorted(hashes)}
    if len(hashes) > 1:
        parts = "; ".join(f"{h[:12]} in {len(rs)} run(s), e.g. {rs[0].path.name}" for h, rs in hashes.items())
        detail = f"runs differ in their data-loading code: {parts}"
        return Check("data pipeline", Status.WARN, detail, evidence, figures, ID)
    digest, runs = next(iter(hashes.items()))
    printed = {r.data_pipeline_sha256 for r in runs if r.data_pipeline_sha256} - {digest}
    mismatch = f"; the log prints {sorted(printed)[0][:12]}, which the judge does not trust" if printed else ""
    if any(is_trainer_source(r.source, r.sectioned) for r in runs):
        canonical = ri.track.data_pipeline_sha256
        figures["canonical"] = canonical or None
        if not canonical:
            detail = f"sha256 {digest[:12]}; no canonical hash pinned in {ri.track.path}{mismatch}"
            return Check("data pipeline", Status.WARN, detail, evidence, figures, ID)
        if digest != canonical:
            detail = f"speedrun/trainer/data.py hashes to {digest[:12]}, the track's canonical is {canonical[:12]}"
            return Check("data pipeline", Status.FAIL, detail + mismatch, evidence, figures, ID)
        documents = _check_document_loader(runs, ri)
        if documents is not None:
            return documents
        detail = f"canonical data pipeline ({digest[:12]}){mismatch}"
        return Check("data pipeline", Status.PASS, detail, evidence, figures, ID)
    prior = ri.prior
    if prior is None or prior.pipeline_hash is None:
        why = ri.prior_note or "no prior record"
        if prior is not None and prior.pipeline_hash is None:
            why = f"{prior.label} has no data-pipeline hash pinned in a record.toml (no log is trusted for it)"
        status = Status.NOT_APPLICABLE if ri.first_of_track else Status.UNCHECKED
        return Check("data pipeline", status, f"sha256 {digest[:12]}; not compared: {why}", evidence, figures, ID)
    figures["prior_sha256"] = prior.pipeline_hash
    cited = evidence + ((prior.pipeline_evidence,) if prior.pipeline_evidence else ())
    source = f", {prior.pipeline_source}" if prior.pipeline_source else ""
    if digest == prior.pipeline_hash:
        detail = f"unchanged since {prior.label} ({digest[:12]}{source})"
        return Check("data pipeline", Status.PASS, detail, cited, figures, ID)
    change = f"{prior.pipeline_hash[:12]}{source} -> {digest[:12]}"
    detail = f"data-loading code changed since {prior.label} ({change}): check the token streams are unchanged"
    return Check("data pipeline", Status.WARN, detail, cited, figures, ID)


def _check_document_loader(runs: list[RunLog], ri: RuleInput) -> Check | None:
    """Our trainer's documents.py against the track's pin, in every run that embeds it or whose recipe needs it;
    None when all agree or no run involves it."""
    pin = ri.track.document_loader_sha256
    hashes: dict[str, list[tuple[RunLog, int]]] = defaultdict(list)
    missing = []
    for run in runs:
        found = sections(run.source or "").get(TRAINER_DOCUMENTS_SECTION)
        if found is not None:
            hashes[source_hash(found[1]) or "not Python"].append((run, found[0]))
        elif (run.config or {}).get("recipe") in RECIPES_WITH_DOCUMENT_LOADER:
            missing.append(run)
    if missing:
        recipe = (missing[0].config or {}).get("recipe")
        detail = (
            f"{len(missing)} run(s) name recipe {recipe!r}, whose batches speedrun/trainer/documents.py cuts, but "
            "do not embed it"
        )
        return Check("data pipeline", Status.UNCHECKED, detail, (missing[0].at(missing[0].config_line),), {}, ID)
    if not hashes:
        return None
    evidence = tuple(source_evidence(rs[0][0], rs[0][1]) for rs in hashes.values())
    figures: dict[str, object] = {"document_loader_sha256": sorted(hashes), "document_loader_pin": pin or None}
    if not pin:
        detail = f"speedrun/trainer/documents.py embedded but no document_loader_sha256 pinned in {ri.track.path}"
        return Check("data pipeline", Status.WARN, detail, evidence, figures, ID)
    changed = sorted(h for h in hashes if h != pin)
    if changed:
        detail = f"speedrun/trainer/documents.py hashes to {changed[0][:12]}, the track's pin is {pin[:12]}"
        return Check("data pipeline", Status.FAIL, detail, evidence, figures, ID)
    return None


DATA_PIPELINE = Rule(
    ID,
    "data pipeline",
    check_data_pipeline,
    "a sha256 of the data-loading code's syntax tree (layout, comments and docstrings left out) and of the facts "
    "around it (file patterns, validation size, assignments to loader names, where loaders are advanced), "
    "computed from the embedded source and never read from a printed line: our trainer's "
    "`speedrun/trainer/data.py` against "
    "the track's `data_pipeline_sha256` (and the 2026-05 recipe's `documents.py` against its "
    "`document_loader_sha256`); upstream loaders against the prior record's hash pinned in its "
    "record.toml (never one read from a log); a change asks for a review. Our trainer's `data:` line must name "
    "FineWeb's shards (`fineweb_train_000001.bin` on at 100,000,000 tokens each, `fineweb_val_000000.bin` at "
    "100,000,000, no synthetic mark in their headers, the same files as its `train_files:`/`val_files:` lines, "
    "10,485,760 validation tokens): other shards, or no data line, ask for a review",
)
