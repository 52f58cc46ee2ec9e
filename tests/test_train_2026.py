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
from speedrun.trainer.train import init_process_group, train

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
    assert line["model"]["attention"] == "flex"  # "auto", settled for this device before the log was written
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


def test_side_by_side_compilation_takes_the_first_step_of_each_graph() -> None:
    from speedrun.trainer.loop_2026 import compiled_graph
    from speedrun.trainer.precompile import first_step_per_graph

    config = TrainOptions(track="small", preset="tiny", recipe="2026-05", steps=6).resolve_config()
    graphs = [compiled_graph(config, s) for s in range(6)]
    # micro-batches of 128, 256, 256, 384, 384, 384 tokens; the extension (steps 4, 5) widens the long window
    assert [tokens for tokens, _ in graphs] == [128, 256, 256, 384, 384, 384]
    assert graphs[3][1] != graphs[4][1] == graphs[5][1]
    assert first_step_per_graph(list(range(6)), lambda s: compiled_graph(config, s)) == [0, 1, 3, 4]
    assert first_step_per_graph([2, 4], lambda s: compiled_graph(config, s)) == [2, 4]


def test_a_graph_compiled_ahead_sees_the_attention_scale_training_reaches() -> None:
    """YaRN's attention scale is a constant of the compiled graph and depends on the windows it grew through;
    a helper or a local rank that jumps straight to its step must still grow through the windows in between,
    or it compiles a graph training never meets."""
    from speedrun.trainer.loop_2026 import compiled_graph
    from speedrun.trainer.precompile import first_step_per_graph

    torch.set_num_threads(1)
    config = TrainOptions(track="small", preset="tiny", recipe="2026-05", steps=6).resolve_config()

    def fresh() -> Trainer2026:
        return Trainer2026(config, torch.device("cpu"), 0, 1, fp8=False, compiled=False, train_paths=[])

    training, reached = fresh(), {}
    for step in range(6):
        training.advance(step)
        reached[step] = (training.model.rotary.scale, training.model.rotary.frequencies.clone())
    firsts = first_step_per_graph(list(range(6)), lambda s: compiled_graph(config, s))
    assert len({config.schedule.stages[i].windows for i in range(4)}) == 4  # type: ignore[union-attr]
    for step in firsts:
        ahead = fresh()
        ahead.advance(step)  # straight there, as a helper goes
        scale, frequencies = reached[step]
        assert ahead.model.rotary.scale == scale
        assert torch.equal(ahead.model.rotary.frequencies, frequencies)
    with pytest.raises(AssertionError, match="restart_schedule"):
        ahead.advance(0)


def test_the_helpers_memory_leaves_the_trainer_its_peak() -> None:
    from speedrun.trainer.precompile import TRAINER_MEMORY, helper_memory_fraction

    gib = 2**30
    h200, h100 = 140 * gib, 80 * gib
    assert TRAINER_MEMORY >= 34_866 * 2**20  # the measured peak (reserved) of a 2026-05 run on one GPU
    for total, helpers in ((h200, 3), (h100, 3), (h100, 1)):
        share = helper_memory_fraction(total, helpers) * total
        assert helpers * share + TRAINER_MEMORY == pytest.approx(total)
    assert helper_memory_fraction(h200, 3) * h200 > 34 * gib  # on an H200, each as much as a training run
    assert helper_memory_fraction(32 * gib, 2) == 0  # nothing to share: no helpers


def test_a_compile_helper_runs_a_micro_step_and_a_failed_one_is_reported(capfd: pytest.CaptureFixture) -> None:
    """The helper processes' plumbing, on CPU (where nothing is compiled): the config travels to a spawned
    process that builds the trainer and runs one micro-step at the step's length; a helper that fails is
    reported, and waiting on it does not raise."""
    from speedrun.trainer.precompile import start_helpers

    config = TrainOptions(track="small", preset="tiny", recipe="2026-05", steps=6).resolve_config()
    helpers = start_helpers(config, [3], torch.device("cpu"), fp8=False)
    ((step, process),) = helpers.processes
    helpers.wait()
    assert (step, process.exitcode) == (3, 0)
    assert "warning" not in capfd.readouterr().err
    failing = start_helpers(config, [5], torch.device("xpu"), fp8=False)  # no such device here
    failing.wait()
    assert failing.processes == []
    err = capfd.readouterr().err
    assert "compile helper for step 5: " in err and "Traceback" not in err
    assert "the compile helper for step 5's graph exited with code 1" in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_warm_up_loads_the_graphs_its_helpers_compiled(
    shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    from torch._dynamo.utils import counters

    from speedrun.trainer.data import train_files

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # cold, and shared with helpers
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "triton"))
    torch._dynamo.reset()
    counters.clear()
    config = TrainOptions(track="small", preset="tiny", recipe="2026-05", steps=6).resolve_config()
    device = torch.device("cuda", 0)
    trainer = Trainer2026(
        config, device, 0, 1, fp8=False, compiled=True, train_paths=train_files(shards), parallel_compile=True
    )
    misses = []  # after each warm-up step: the graphs compiled from scratch so far (forward, backward, pieces)
    warm_up_step = Trainer2026.train_step

    def counted(self: Trainer2026, *args: object, **kwargs: object) -> torch.Tensor:
        loss = warm_up_step(self, *args, **kwargs)  # type: ignore[arg-type]
        misses.append(counters["inductor"]["fxgraph_cache_miss"] + counters["aot_autograd"]["autograd_cache_miss"])
        return loss

    monkeypatch.setattr(Trainer2026, "train_step", counted)
    trainer.warm_up()
    assert "compile helper" not in capfd.readouterr().err
    # from a cold cache: the first graph compiled here at step 0; the other three, compiled by the helpers, loaded
    seen = dict(counters["inductor"]) | dict(counters["aot_autograd"])
    assert len(misses) >= 4 and misses[0] > 0, seen  # a warm-up step or more per graph
    assert misses == [misses[0]] * len(misses), (misses, seen)
    assert counters["aot_autograd"]["autograd_cache_hit"] >= 3, seen


def _warm_then_train(rank: int, side_by_side: bool, init_file: str, shards: str, out: str) -> None:
    import torch.distributed as dist

    from speedrun.trainer.data import train_files

    torch.set_num_threads(1)
    init_process_group(torch.device("cpu"), f"file://{init_file}", rank, 2)
    try:
        config = TrainOptions(track="small", preset="tiny", recipe="2026-05", steps=6).resolve_config()
        trainer = Trainer2026(
            config, torch.device("cpu"), rank, 2, fp8=False, compiled=False, train_paths=train_files(Path(shards)),
            local_rank=rank, local_world_size=2,
        )  # fmt: skip
        trainer.parallel_compile = side_by_side  # on a GPU only; its effect on the state is the same here
        trainer.warm_up()
        losses = [trainer.train_step(trainer.advance(step)) for step in range(2)]
        for loss in losses:
            dist.all_reduce(loss)
        if rank == 0:
            torch.save({"losses": [x.item() for x in losses], "state": trainer.model.state_dict()}, out)
    finally:
        dist.destroy_process_group()


def test_local_ranks_sharing_the_lengths_out_leave_training_as_it_was(
    shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under torchrun the node's local ranks share the graphs out before the warm-up, each running a micro-step
    at its graphs' steps (here rank 0 steps 0 and 3, rank 1 steps 1 and 4: the graphs it compiles are shared
    through the caches); afterwards the weights, the rotary embedding and the schedule's state are as if it
    had not, so training goes on the same."""
    import torch.multiprocessing as mp

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    runs = {}
    for side_by_side in (False, True):
        out = tmp_path / f"{side_by_side}.pt"
        init = str(tmp_path / f"init-{side_by_side}")
        mp.spawn(_warm_then_train, args=(side_by_side, init, str(shards), str(out)), nprocs=2, join=True)
        runs[side_by_side] = torch.load(out)
    assert runs[True]["losses"] == runs[False]["losses"]
    for name, tensor in runs[False]["state"].items():
        assert torch.equal(runs[True]["state"][name], tensor), name
