"""The 2026-05 recipe trains on CPU: a few steps of the tiny preset through every stage, the untying of the
embedding and the widened last validation, with a log the judge reads."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from speedrun.judge.parse import parse_log
from speedrun.trainer.config import TrainOptions
from speedrun.trainer.loop_2026 import Trainer2026
from speedrun.trainer.shards import write_synthetic
from speedrun.trainer.stages import plan
from speedrun.trainer.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shards2026")
    write_synthetic(folder, train_shards=1, tokens_per_shard=200_000, val_tokens=20_000, seed=0, language_name="zipf")
    return folder


def test_a_short_run_learns_through_every_stage_and_logs_the_recipe(shards: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    options = TrainOptions(
        track="small", preset="tiny", recipe="2026-05", device="cpu", data_dir=shards, log_dir=tmp_path,
        steps=6, val_every=6,
    )  # fmt: skip
    config = options.resolve_config()
    # three stages in 4 scheduled steps, then 2 of extension
    assert [plan(s, config).batch_tokens for s in range(6)] == [1024, 2048, 2048, 3072, 3072, 3072]
    assert [s for s in range(6) if plan(s, config).untie] == [3]
    log = train(options)
    run = parse_log(log)
    vals = [s.val_loss for s in run.val_steps]
    assert [s.step for s in run.val_steps] == [0, 6]
    assert vals[0] == pytest.approx(10.83, abs=0.05) and math.isfinite(vals[1]) and vals[1] < vals[0] - 0.5
    text = log.read_text()
    line = json.loads(next(x for x in text.splitlines() if x.startswith("config: "))[len("config: ") :])
    assert (line["track"], line["recipe"], line["preset"], line["num_iterations"]) == (
        "track_1_short",
        "2026-05",
        "tiny",
        6,
    )
    for name in ("model_2026.py", "layers/attention.py", "normuon.py", "stages.py", "documents.py"):
        assert f"# >>> speedrun/trainer/{name}\n" in text


def test_the_embedding_follows_the_head_until_untied_then_moves_on_its_own(shards: Path) -> None:
    from speedrun.trainer.data import train_files

    torch.set_num_threads(1)
    config = TrainOptions(track="small", preset="tiny", recipe="2026-05", steps=6).resolve_config()
    trainer = Trainer2026(config, torch.device("cpu"), 0, 1, fp8=False, compiled=False, train_paths=train_files(shards))
    model = trainer.model
    assert [s for s in range(6) if plan(s, config).untie] == [3]
    for step in range(4):
        trainer.train_step(trainer.advance(step))
        if step < 3:
            assert torch.equal(model.embed, model.head.t()), step
    assert not trainer.optimizers.tied
    assert model.embed in trainer.optimizers.adam.state  # the head's state, transposed
    head_before = model.head.detach().clone()
    embed_before = model.embed.detach().clone()
    trainer.train_step(trainer.advance(4))  # even: NorMuon only
    trainer.train_step(trainer.advance(5))  # odd: Adam, embedding and head apart
    assert not torch.equal(model.embed, model.head.t())
    assert not torch.equal(model.embed, embed_before) and not torch.equal(model.head, head_before)


def test_after_warm_up_no_step_compiles_the_model_again(shards: Path) -> None:
    """The log's timing leaves compilation out only if warm-up compiled every graph the run meets: each batch
    length, each window pair and each rotary scale of the stages and the extension. On a GPU the trainer
    compiles the model's body; here a backend that only counts stands in for Inductor."""
    from speedrun.trainer.data import train_files

    torch.set_num_threads(1)
    config = TrainOptions(track="small", preset="tiny", recipe="2026-05", steps=6).resolve_config()
    trainer = Trainer2026(config, torch.device("cpu"), 0, 1, fp8=False, compiled=False, train_paths=train_files(shards))
    graphs = []

    def count(gm: torch.fx.GraphModule, inputs: list) -> object:
        graphs.append(gm)
        return gm.forward

    trainer.model.hidden_states = torch.compile(trainer.model.hidden_states, backend=count, dynamic=False)
    trainer.warm_up()
    shapes = {(plan(s, config).batch_tokens, plan(s, config).windows) for s in range(6)}
    assert len(graphs) == len(shapes) == 4
    for step in range(6):
        trainer.train_step(trainer.advance(step))
    assert len(graphs) == len(shapes)
