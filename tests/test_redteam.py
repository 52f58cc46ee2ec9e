"""The judge against a dishonest contributor: every attack of the red-team corpus (tests/redteam/corpus.py).

Each attack edits real records of the upstream archive; the judge must not pass it (a failing or review
verdict), or must refuse it cleanly (exit 2, one line naming the file). Where an attack names its `why`, the
judge's JSON must give that reason, so that it is caught for what it does. An attack that waits for a change
would be marked xfail(strict=True) with that change as the reason (none is today): when the change lands, the
strict marker turns the run red, and the marker comes off. What the layers below the rules see of an attack is
asserted by `test_layers_see_what_the_rules_will_use`.

The judge runs in this process (`speedrun.cli.main`), not in a subprocess: a hundred interpreter starts
would cost a minute. Time and memory bounds are measured in benchmarks/judge_attacks.py.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

from speedrun import cli
from speedrun.console import err, out
from tests.redteam.corpus import ATTACKS, BAD_INPUT, CHECK, Attack, Case, Outcome, Workspace

pytestmark = pytest.mark.archive


def _param(attack: Attack) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=attack.awaits)] if attack.awaits else []
    return pytest.param(attack, id=attack.name, marks=marks)


def run_judge(case: Case, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Outcome:
    """`speedrun judge PATH... ARGS` in this process: its exit code, stdout and stderr."""
    monkeypatch.setattr(sys, "argv", ["speedrun", "judge", *map(str, case.paths), *case.args])
    for console in (out, err):
        monkeypatch.setattr(console, "width", 400)  # no folding of long file names in the table
    if case.cwd is not None:
        monkeypatch.chdir(case.cwd)
    code = 0
    try:
        cli.main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def assert_caught(case: Case, outcome: Outcome) -> None:
    if case.expect == CHECK:
        assert case.check is not None
        case.check(outcome)
        return
    assert "Traceback" not in outcome.err, outcome.err
    if case.expect == BAD_INPUT:
        assert outcome.code == 2, f"exit {outcome.code}: {outcome.err or outcome.out[-300:]}"
    else:
        assert outcome.code in (1, 2, 4), f"exit {outcome.code}: the judge let it through\n{outcome.out[-600:]}"
        if case.why is not None:
            assert case.why in outcome.out, f"caught, but not for its reason {case.why!r}:\n{outcome.out[-1500:]}"
    if outcome.code == 2:
        lines = outcome.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), outcome.err


@pytest.mark.parametrize("attack", [_param(a) for a in ATTACKS])
def test_attack_is_caught(
    attack: Attack,
    upstream_records: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = attack.build(Workspace(upstream_records, tmp_path))
    if case.why is not None:
        case.args = [*case.args, "--json"]  # the reasons unwrapped, as written
    assert_caught(case, run_judge(case, monkeypatch, capsys))


@pytest.mark.parametrize("attack", [a for a in ATTACKS if a.layered], ids=lambda a: a.name)
def test_layers_see_what_the_rules_will_use(attack: Attack, upstream_records: Path, tmp_path: Path) -> None:
    case = attack.build(Workspace(upstream_records, tmp_path))
    assert case.layer is not None
    case.layer()


def test_the_corpus_covers_every_family_of_forgery() -> None:
    families = Counter(a.family for a in ATTACKS)
    expected = {
        "warnings never fail",
        "near-duplicates",
        "the final result",
        "timing",
        "compile flags",
        "the source boundary",
        "data pipeline",
        "robustness",
    }
    assert set(families) == expected
    assert len(ATTACKS) >= 60 and len({a.name for a in ATTACKS}) == len(ATTACKS)
    print("\n" + "\n".join(f"{family}: {n}" for family, n in families.items()))
