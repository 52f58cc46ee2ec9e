"""How far the untrained model's validation loss (a run's step 0) moves with the initialisation alone: the
2026-05 model, built as `speedrun train` builds it under each seed, on the same validation tokens, on CPU
(dense attention; bf16 only where the model keeps it).

Record 84's script does not seed its weights, so its step-0 loss moves from run to run; ours is seeded. This
puts a figure on that spread for ours, to set beside the script's.

    speedrun data synthetic --dir DIR --language zipf --val-tokens 65536 --train-shards 1 --tokens-per-shard 100000
    python benchmarks/init_loss_spread.py --data-dir DIR [--seeds 0,1,2,3,4] [--tokens 16384]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from speedrun.trainer.config import TrainOptions  # noqa: E402
from speedrun.trainer.data import val_files  # noqa: E402
from speedrun.trainer.loop_2026 import Trainer2026  # noqa: E402
from speedrun.trainer.stages import plan  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="shards written by `speedrun data synthetic`")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated")
    parser.add_argument("--tokens", type=int, default=16384, help="validation tokens (a multiple of 4096)")
    args = parser.parse_args()
    config = TrainOptions(track="small", recipe="2026-05").resolve_config()
    config = config.replace(data=dataclasses.replace(config.data, val_tokens=args.tokens, val_micro_batch_tokens=4096))
    paths = val_files(args.data_dir)
    losses = []
    for seed in (int(s) for s in args.seeds.split(",")):
        started = time.perf_counter()
        seeded = config.replace(seed=seed)  # as `speedrun train --seed` seeds the weights
        trainer = Trainer2026(seeded, torch.device("cpu"), 0, 1, fp8=False, compiled=False, train_paths=[])
        losses.append(trainer.evaluate(plan(0, config), paths, last=False))
        print(f"seed {seed}: step-0 val loss {losses[-1]:.4f} over {args.tokens} tokens "
              f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    print(f"{len(losses)} seeds: {min(losses):.4f} to {max(losses):.4f} (spread {max(losses) - min(losses):.4f})")


if __name__ == "__main__":
    main()
