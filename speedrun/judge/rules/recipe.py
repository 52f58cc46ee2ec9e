"""A run of our own trainer is a record run only as the track's record recipe, in full (SR011).

The trainer has presets for trying it out (`tiny`: a 4-layer model for a CPU) and takes `--steps`: such runs
train and log like any other, and are no record whatever their losses say. Their config line names the track,
the preset (null for the record recipe), the recipe (when the trainer names one) and `num_iterations`; the step
count of each recipe is pinned in the track file (`recipe_steps`, "default" for a config that names none), so
the judge needs nothing of the trainer's code, and a figure the trainer changes must be changed there too (a
test holds the two equal). Logs of any other program are not this rule's: their code is their recipe.
"""

from __future__ import annotations

from speedrun.judge.rules.base import Rule, RuleInput
from speedrun.judge.runlog import Evidence, RunLog
from speedrun.judge.verdict import Check, Status

ID = "SR011"
DEFAULT_RECIPE = "default"


def recipe_problems(run: RunLog, track: str, steps: dict[str, int]) -> list[str]:
    """Why a run of our trainer is not a run of the track's record recipe in full (empty: it is)."""
    config = run.config
    if config is None:
        return ["no config line: the recipe it ran is unknown"]
    problems = []
    if config.get("track") != track:
        problems.append(f"its config names track {config.get('track')!r}, not {track}")
    preset = config.get("preset")
    if preset is not None:
        problems.append(f"preset {preset!r}, a trial configuration, not the record recipe")
    recipe = config.get("recipe")
    name = DEFAULT_RECIPE if recipe is None else str(recipe)
    want = steps.get(name)
    got = config.get("num_iterations")
    if want is None:
        problems.append(f"recipe {name!r} has no step count pinned in the track file")
    elif preset is None and got != want:
        problems.append(f"num_iterations {got!r}, where the {name} recipe trains {want} steps")
    return problems


def check_recipe(ri: RuleInput) -> Check:
    """Runs of our trainer are runs of the track's record recipe: no preset, the recipe's own step count."""
    ours = [run for run in ri.runs if run.is_ours]
    if not ours:
        return Check("recipe", Status.NOT_APPLICABLE, "not our trainer's logs: their code is their recipe", rule_id=ID)
    steps = {str(k): v for k, v in dict(ri.parameter(ID, "recipe_steps", {})).items()}
    found: dict[tuple[str, ...], list[RunLog]] = {}
    for run in ours:
        found.setdefault(tuple(recipe_problems(run, ri.track.name, steps)), []).append(run)
    evidence = tuple(
        rs[0].at(rs[0].config_line) if rs[0].config_line else Evidence(rs[0].path) for rs in found.values()
    )
    bad = {problems: runs for problems, runs in found.items() if problems}
    if not bad:
        detail = f"{len(ours)} run(s) of the record recipe in full (config line at {evidence[0]})"
        return Check("recipe", Status.PASS, detail, evidence, rule_id=ID)
    parts = [f"{len(runs)} run(s) (e.g. {runs[0].path.name}): {'; '.join(problems)}" for problems, runs in bad.items()]
    detail = f"not a record run: {' / '.join(parts)}"
    return Check("recipe", Status.WARN, detail, evidence, {"problems": [list(p) for p in bad]}, ID)


RECIPE = Rule(
    ID,
    "recipe",
    check_recipe,
    "our trainer's logs only: the config line names the judged track, no preset (`tiny` and the like are for "
    "trials) and the step count the track file pins for its recipe (`recipe_steps`); anything else is not a "
    "record run and asks for a review",
)
