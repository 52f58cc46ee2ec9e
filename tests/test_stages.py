"""Record 84's staged schedule, step by step against the record's own TrainingSchedule and momentum function
(taken from its published log; see tests/record84.py for why running them is allowed in tests), at its own
length and shortened the way `speedrun reproduce --steps` shortens it."""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path

import pytest

from speedrun.trainer import stages
from speedrun.trainer.config import TrainConfig, get_config
from tests.record84 import load

pytestmark = pytest.mark.archive


def shortened(config: TrainConfig, steps: int) -> TrainConfig:
    """What --steps does to the staged recipe: `steps` scheduled steps, no extension."""
    schedule = dataclasses.replace(config.schedule, scheduled_iterations=steps, extension_iterations=0)
    return dataclasses.replace(config, schedule=schedule, num_iterations=steps)


@pytest.mark.parametrize("steps", [None, 320])
def test_every_step_trains_with_what_the_record_schedules(upstream_records: Path, steps: int | None) -> None:
    config = get_config("small", recipe="2026-05")
    if steps is not None:
        config = shortened(config, steps)
    schedule = config.schedule
    args = types.SimpleNamespace(
        num_scheduled_iterations=schedule.scheduled_iterations, num_extension_iterations=schedule.extension_iterations
    )
    names = ["TrainingStage", "TrainingSchedule", "TRAINING_STAGES", "training_schedule", "get_muon_momentum"]
    record = load(upstream_records, names, args=args)
    theirs = record["training_schedule"]
    assert theirs.total_steps == config.num_iterations
    assert theirs.split_step == stages.untie_step(schedule)
    assert [start for start, _ in theirs.boundaries[1:]] == stages.transition_steps(schedule)
    for step in range(config.num_iterations + 1):
        ours = stages.plan(step, config)
        stage, _ = theirs.lookup(step)
        assert ours.batch_tokens == stage.batch_size and ours.max_seq_len == stage.train_max_seq_len, step
        assert ours.windows == stage.window_sizes, step
        assert ours.lr_multiplier == pytest.approx(theirs.get_lr(step), abs=1e-12), step
        assert ours.muon_momentum == pytest.approx(record["get_muon_momentum"](step), abs=1e-12), step
        assert ours.mtp_weights == pytest.approx(tuple(theirs.mtp_weights[step].tolist()), abs=1e-6), step
        assert ours.adam_step == (step % 2 == 1)


def test_the_schedule_grows_batches_and_windows_and_unties_at_two_thirds() -> None:
    config = get_config("small", recipe="2026-05")
    plans = [stages.plan(s, config) for s in range(config.num_iterations + 1)]
    assert [p.batch_tokens for p in plans[::500]] == [131072, 262144, 393216]
    assert plans[0].max_seq_len == 896 and plans[-1].max_seq_len == 2048
    assert plans[0].mtp_weights == (1.0, 0.5, 0.25) and plans[-1].mtp_weights == (1.0,)
    assert [p.step for p in plans if p.untie] == [963]  # 2/3 of 1445 is 963, odd
    assert plans[0].lr_multiplier == 1.0 and plans[1445].lr_multiplier == pytest.approx(0.15)
