"""Recipes as functions, variants as a recipe plus a few changes, and the config line the judge reads."""

from __future__ import annotations

import json

import pytest

from speedrun.errors import BadInput
from speedrun.trainer.config import RECIPES, get_config, recipe_names, variant


def test_each_track_has_a_default_recipe_and_says_which_it_runs() -> None:
    assert recipe_names("small")[0] == "2025-08"
    assert recipe_names("medium")[0] == "2025-04"
    assert get_config("small").recipe == "2025-08"
    assert get_config("small", recipe="2025-08") == get_config("small")
    for (track, name), recipe in RECIPES.items():
        config = recipe()
        assert (config.track, config.recipe, config.preset) == (track, name, None)


def test_the_config_line_keeps_the_keys_the_judge_reads_at_its_top() -> None:
    line = json.loads(get_config("small", "tiny").to_json())
    assert {"track", "recipe", "preset", "num_iterations"} <= line.keys()
    assert (line["track"], line["recipe"], line["preset"]) == ("track_1_short", "2025-08", "tiny")
    # the groups are nested: a figure is found under the part of the recipe it belongs to
    assert line["optim"]["adam"]["lr_head"] == 0.008 and line["data"]["micro_steps_per_step"] == 4


def test_a_variant_changes_only_the_named_fields() -> None:
    base = get_config("small")
    changed = variant(base, {"optim.muon.lr": 0.03, "schedule.cooldown_frac": 0.5, "val_every": 10})
    assert (changed.optim.muon.lr, changed.schedule.cooldown_frac, changed.val_every) == (0.03, 0.5, 10)
    assert changed.optim.adam == base.optim.adam and changed.model == base.model
    assert variant(changed, {"optim.muon.lr": 0.05, "schedule.cooldown_frac": 0.45, "val_every": 125}) == base


def test_a_misspelt_variant_field_is_an_error_not_a_silent_no_op() -> None:
    with pytest.raises(KeyError, match="lr_haed"):
        variant(get_config("small"), {"optim.adam.lr_haed": 0.1})


def test_an_unknown_recipe_names_the_ones_there_are() -> None:
    with pytest.raises(BadInput, match="unknown recipe '2030-01' for track track_2_medium: use '2025-04'"):
        get_config("medium", recipe="2030-01")
