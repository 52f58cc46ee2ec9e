"""Launching workers: the torch.distributed.run command line, the GPU-count rule, and a real two-process
CPU run through `speedrun train --nproc-per-node 2` that must match a single process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from speedrun.errors import BadInput
from speedrun.trainer.launch import (
    DEFAULT_MASTER_PORT,
    Topology,
    check_world_size,
    inside_torchrun,
    rank_from_env,
    torchrun_command,
    world_size_from_env,
)
from speedrun.trainer.shards import write_synthetic


def test_inside_torchrun_reads_the_launcher_environment() -> None:
    assert not inside_torchrun({})
    assert not inside_torchrun({"RANK": "0", "WORLD_SIZE": "1"})
    assert inside_torchrun({"LOCAL_RANK": "0"})
    assert inside_torchrun({"TORCHELASTIC_RUN_ID": "abc"})
    assert world_size_from_env({}) == 1 and rank_from_env({}) == 0
    assert world_size_from_env({"WORLD_SIZE": "16"}) == 16 and rank_from_env({"RANK": "3"}) == 3
    with pytest.raises(BadInput, match="WORLD_SIZE"):
        world_size_from_env({"WORLD_SIZE": "many"})
    with pytest.raises(BadInput, match="RANK='first' is not an integer"):
        rank_from_env({"RANK": "first"})


@pytest.mark.parametrize("world_size", [1, 2, 4, 8])
def test_gpu_counts_that_divide_the_micro_steps_are_accepted(world_size: int) -> None:
    check_world_size(world_size, 8)


@pytest.mark.parametrize("world_size", [0, 3, 5, 6, 7, 16])
def test_other_gpu_counts_are_refused_with_the_choices(world_size: int) -> None:
    with pytest.raises(BadInput) as caught:
        check_world_size(world_size, 8)
    assert "1, 2, 4, 8" in str(caught.value)


def test_topology_counts_every_node() -> None:
    Topology(nproc_per_node=4, nnodes=2, master_addr="10.0.0.1").validate(8)
    with pytest.raises(BadInput, match="1, 2, 4, 8"):
        Topology(nproc_per_node=8, nnodes=2, master_addr="10.0.0.1").validate(8)
    with pytest.raises(BadInput, match="--master-addr"):
        Topology(nproc_per_node=4, nnodes=2).validate(8)
    with pytest.raises(BadInput, match="--node-rank"):
        Topology(nproc_per_node=4, nnodes=2, node_rank=2, master_addr="h").validate(8)
    with pytest.raises(BadInput, match="--master-port"):
        Topology(nproc_per_node=2, master_port=70000).validate(8)
    with pytest.raises(BadInput, match="--nproc-per-node"):
        Topology(nproc_per_node=0).validate(8)


def test_single_node_uses_a_private_rendezvous() -> None:
    command = torchrun_command(Topology(nproc_per_node=8), ["--track", "small"])
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc-per-node=8" in command and "--standalone" in command
    assert not any(arg.startswith("--master") for arg in command)
    assert command[-5:] == ["-m", "speedrun", "train", "--track", "small"]


def test_multi_node_names_the_master_and_this_node() -> None:
    topology = Topology(nproc_per_node=4, nnodes=2, node_rank=1, master_addr="10.1.2.3")
    command = torchrun_command(topology, ["--steps", "5"])
    assert "--standalone" not in command
    for arg in ("--nproc-per-node=4", "--nnodes=2", "--node-rank=1", "--master-addr=10.1.2.3"):
        assert arg in command
    assert f"--master-port={DEFAULT_MASTER_PORT}" in command
    assert command.index("--node-rank=1") < command.index("speedrun")


def _final_val_loss(log: Path) -> float:
    from speedrun.judge.parse import parse_log

    run = parse_log(log)
    assert run.format == "speedrun"
    assert run.final_val_loss is not None
    return run.final_val_loss


@pytest.mark.slow
def test_two_cpu_workers_through_the_launcher_match_one_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_synthetic(
        data_dir, train_shards=1, tokens_per_shard=200_000, val_tokens=20_000, seed=0, language_name="order2"
    )
    common = ["--preset", "tiny", "--device", "cpu", "--data-dir", str(data_dir), "--steps", "2", "--val-every", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}
    logs = {}
    for nproc in (1, 2):
        log_dir = tmp_path / f"logs{nproc}"
        command = [sys.executable, "-m", "speedrun", "train", *common, "--log-dir", str(log_dir)]
        command += ["--nproc-per-node", str(nproc), "--run-id", f"n{nproc}"]
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        # the launcher's own traceback is about 2,000 characters: keep what the workers said before it
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-6000:]
        logs[nproc] = log_dir / f"n{nproc}.txt"
        assert f"log: {logs[nproc]}" in proc.stdout
        assert f"world_size: {nproc}" in logs[nproc].read_text()
    one, two = _final_val_loss(logs[1]), _final_val_loss(logs[2])
    assert two == pytest.approx(one, rel=2e-3, abs=2e-3)


# Run in a fresh interpreter: the pytest process may have imported torch._dynamo already, which would hide the bug.
_GROUP_LIFETIME = textwrap.dedent(
    """
    import gc, os, sys
    import torch, torch.distributed as dist
    from speedrun.trainer.train import init_process_group

    def threads():
        return sorted(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))

    init_process_group(torch.device("cpu"), f"file://{sys.argv[1]}", rank=0, world_size=1)
    dist.all_reduce(torch.ones(3))
    import torch._dynamo  # as compiling the model or FlexAttention does, after the group exists
    dist.destroy_process_group()
    gc.collect()
    print(threads())
    """
)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread names from /proc")
def test_a_destroyed_process_group_leaves_no_threads_behind(tmp_path: Path) -> None:
    # gloo threads that outlive destroy_process_group meet interpreter shutdown and can abort a finished worker
    command = [sys.executable, "-c", _GROUP_LIFETIME, str(tmp_path / "rendezvous")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    threads = proc.stdout.strip().splitlines()[-1]
    assert "gloo" not in threads, threads
