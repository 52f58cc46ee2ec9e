"""What changes over training: the learning rate, Muon's momentum and the attention window."""

from __future__ import annotations

import math

from speedrun.trainer.config import ATTENTION_BLOCK_SIZE, TrainConfig


def progress(step: int, config: TrainConfig) -> float:
    """Fraction of training done, 0 at the first step and 1 after the last."""
    return min(max(step / config.num_iterations, 0.0), 1.0)


def lr_multiplier(step: int, config: TrainConfig) -> float:
    """Stable then decay: 1 until the last `cooldown_frac` of training, then linearly down to `final_lr_fraction`."""
    x = progress(step, config)
    cooldown = config.schedule.cooldown_frac
    remaining = min((1 - x) / cooldown, 1.0) if cooldown > 0 else 1.0
    return remaining + (1 - remaining) * config.schedule.final_lr_fraction


def muon_momentum(step: int, config: TrainConfig) -> float:
    """Momentum warms up linearly from `muon_momentum_start` to `muon_momentum`."""
    muon = config.optim.muon
    frac = min(step / muon.momentum_warmup_steps, 1.0) if muon.momentum_warmup_steps > 0 else 1.0
    return (1 - frac) * muon.momentum_start + frac * muon.momentum


def window_blocks(step: int, config: TrainConfig) -> int:
    """Long attention window in blocks of 128 tokens: the smallest whole number of blocks covering
    `window_tokens * growth`, and at least one, where growth goes from 0 to 1 over training.

    Short windows are half of it. A "cubic" schedule grows fast, flattens mid-run, then grows again. Computed
    as the records compute it (the rounding decides the window on hundreds of steps).
    """
    x = progress(step, config)
    growth = x if config.schedule.window_schedule == "linear" else 4 * x**3 - 6 * x**2 + 3 * x
    # dividing by a power of two is exact, so this ceiling is the record's "next multiple of 128 at or above"
    return max(1, math.ceil(config.schedule.window_tokens * growth / ATTENTION_BLOCK_SIZE))
