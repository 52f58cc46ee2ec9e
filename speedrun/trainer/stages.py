"""Record 84's staged schedule: what each step of the 2026-05 recipe trains with.

Training is cut into stages (a third of the scheduled steps each, then an extension at the last stage's
settings); a stage fixes the batch size, the document cap, the attention windows and a learning-rate multiplier,
and moves the multi-token-prediction weights linearly from its start values to its end values. Over the last
`cooldown_frac` of the scheduled steps the learning rate falls linearly to `final_lr`; NorMuon's momentum rises
over the first steps and falls back over the last ones; Adam steps on odd steps only; the embedding is untied
from the head at the first odd step of stage `untie_stage`. All of it is a pure function of the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate, pairwise

from speedrun.trainer.config import NorMuonConfig, Stage, StagedSchedule, TrainConfig


def boundaries(schedule: StagedSchedule) -> list[tuple[int, int]]:
    """[start, end) of each stage: the scheduled stages end at rounded fractions, the extension after them."""
    scheduled = schedule.scheduled_iterations
    durations = [s.duration or 0.0 for s in schedule.stages[:-1]]
    ends = [0, *(round(c * scheduled) for c in accumulate(durations)), scheduled + schedule.extension_iterations]
    return list(pairwise(ends))


def stage_at(step: int, schedule: StagedSchedule) -> tuple[Stage, float]:
    """The stage of `step` and how far into it the step is (0 at its start; 1 past the last stage)."""
    for stage, (start, end) in zip(schedule.stages, boundaries(schedule), strict=True):
        if step < end:
            return stage, (step - start) / (end - start)
    return schedule.stages[-1], 1.0


def lr_multiplier(step: int, schedule: StagedSchedule) -> float:
    """The stage's multiplier, then a linear fall to `final_lr` over the last `cooldown_frac` of the scheduled
    steps (held there through the extension)."""
    stage, _ = stage_at(step, schedule)
    scheduled = schedule.scheduled_iterations
    cooldown_start = int(scheduled * (1 - schedule.cooldown_frac))
    if step < cooldown_start:
        return stage.lr_mul
    t = min(1.0, (step - cooldown_start) / (scheduled - cooldown_start))
    return stage.lr_mul * (1 - t) + schedule.final_lr * t


def mtp_weights(step: int, schedule: StagedSchedule) -> tuple[float, ...]:
    """Weights of the losses on the next 1, 2, ... tokens: the stage's start values moving to its end values."""
    stage, t = stage_at(step, schedule)
    return tuple(a + (b - a) * t for a, b in zip(stage.mtp_start, stage.mtp_end, strict=True))


def muon_momentum(step: int, total_steps: int, muon: NorMuonConfig) -> float:
    """Linear warmup from `momentum_min` to `momentum`, flat, then linearly back over the last steps."""
    cooldown_start = total_steps - muon.momentum_cooldown_steps
    span = muon.momentum - muon.momentum_min
    if step < muon.momentum_warmup_steps:
        return muon.momentum_min + step / muon.momentum_warmup_steps * span
    if step > cooldown_start:
        return muon.momentum - (step - cooldown_start) / muon.momentum_cooldown_steps * span
    return muon.momentum


def untie_step(schedule: StagedSchedule) -> int:
    """The first odd step of the untie stage: an Adam step, so the head's state is fresh when it is copied."""
    return boundaries(schedule)[schedule.untie_stage][0] | 1


def is_adam_step(step: int, every: int) -> bool:
    """Adam steps when `step % every == every - 1`: on odd steps for every=2."""
    return step % every == every - 1


def transition_steps(schedule: StagedSchedule) -> list[int]:
    """The first step of each stage after the first."""
    return [start for start, _ in boundaries(schedule)[1:]]


@dataclass(frozen=True)
class StepPlan:
    """Everything step `step` trains with."""

    step: int
    batch_tokens: int
    max_seq_len: int
    windows: tuple[int, int]  # (short, long), in blocks of 128 tokens
    lr_multiplier: float
    muon_momentum: float
    mtp_weights: tuple[float, ...]
    adam_step: bool
    untie: bool  # the embedding is untied from the head after this step


def plan(step: int, config: TrainConfig) -> StepPlan:
    schedule, optim = config.schedule, config.optim
    assert isinstance(schedule, StagedSchedule)
    stage, _ = stage_at(step, schedule)
    return StepPlan(
        step=step,
        batch_tokens=stage.batch_tokens,
        max_seq_len=stage.max_seq_len,
        windows=stage.windows,
        lr_multiplier=lr_multiplier(step, schedule),
        muon_momentum=muon_momentum(step, config.num_iterations, optim.muon),  # type: ignore[union-attr]
        mtp_weights=mtp_weights(step, schedule),
        adam_step=is_adam_step(step, optim.adam.every),  # type: ignore[union-attr]
        untie=step == untie_step(schedule),
    )
