"""The technique registry: its README table is current, every code location it names exists, every record it
cites is in the records store, and every recipe it names is one of ours."""

from __future__ import annotations

from speedrun.errors import BadInput
from speedrun.store import load_records
from speedrun.trainer.config import RECIPES
from speedrun.trainer.techniques import BEGIN, END, TECHNIQUES, code_location_exists, render_table, splice
from tests.conftest import ROOT


def test_the_readme_table_is_generated_from_the_registry() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert splice(readme, render_table(load_records())) == readme, (
        "the README's technique table is out of date: run `python -m speedrun.trainer.techniques`"
    )


def test_every_code_location_exists() -> None:
    missing = [t.code for t in TECHNIQUES if t.code is not None and not code_location_exists(t.code)]
    assert missing == []


def test_a_wrong_code_location_is_caught() -> None:
    assert code_location_exists("speedrun/trainer/model.py:GPT.attention_masks")
    assert not code_location_exists("speedrun/trainer/model.py:GPT.no_such_method")
    assert not code_location_exists("speedrun/trainer/no_such_file.py:GPT")


def test_every_cited_record_and_recipe_exists() -> None:
    numbers = {r.number for r in load_records() if r.track == "track_1_short"}
    recipes = {name for _, name in RECIPES} | {"2026-05"}  # 2026-05: the recipe of record 84, being built
    for t in TECHNIQUES:
        assert t.record in numbers, t.name
        assert set(t.recipes) <= recipes, t.name
    assert [t.record for t in TECHNIQUES] == sorted(t.record for t in TECHNIQUES), "ordered by record"


def test_splice_needs_exactly_one_pair_of_markers() -> None:
    assert splice(f"a\n{BEGIN}\nold\n{END}\nb", "new") == f"a\n{BEGIN}\n\nnew\n\n{END}\nb"
    for broken in (f"{BEGIN}\n", f"{BEGIN}{END}{BEGIN}{END}"):
        try:
            splice(broken, "x")
        except BadInput:
            continue
        raise AssertionError(f"accepted {broken!r}")
