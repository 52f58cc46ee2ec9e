"""Starting the training workers: `speedrun train --nproc-per-node N` re-runs itself under torch.distributed.run.

Each worker is a plain `python -m speedrun train ...` that finds RANK / WORLD_SIZE / LOCAL_RANK in its
environment and trains in-process, which is also what happens when a user calls `torchrun -m speedrun train`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from speedrun.errors import BadInput

DEFAULT_MASTER_PORT = 29500


def inside_torchrun(environ: Mapping[str, str] = os.environ) -> bool:
    """True in a worker started by torch.distributed.run (torchrun sets both; LOCAL_RANK alone is enough)."""
    return "TORCHELASTIC_RUN_ID" in environ or "LOCAL_RANK" in environ


def env_int(name: str, default: int, environ: Mapping[str, str] = os.environ) -> int:
    """An integer environment variable such as torchrun's RANK, or `default` where it is unset."""
    value = environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise BadInput(None, f"environment variable {name}={value!r} is not an integer") from None


def world_size_from_env(environ: Mapping[str, str] = os.environ) -> int:
    """The number of processes of the job this one belongs to (1 outside torchrun)."""
    return env_int("WORLD_SIZE", 1, environ)


def rank_from_env(environ: Mapping[str, str] = os.environ) -> int:
    """This process's rank in its job (0 outside torchrun)."""
    return env_int("RANK", 0, environ)


@dataclass(frozen=True)
class Topology:
    """How many worker processes, on how many machines, and how they find each other."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    def validate(self, micro_steps_per_step: int) -> None:
        """Refuse, before anything starts, a layout that cannot run the recipe's gradient accumulation."""
        if self.nproc_per_node < 1:
            raise BadInput(None, f"--nproc-per-node must be at least 1, got {self.nproc_per_node}")
        if self.nnodes < 1:
            raise BadInput(None, f"--nnodes must be at least 1, got {self.nnodes}")
        if not 0 <= self.node_rank < self.nnodes:
            raise BadInput(None, f"--node-rank must be in 0..{self.nnodes - 1}, got {self.node_rank}")
        if self.master_port is not None and not 0 < self.master_port < 65536:
            raise BadInput(None, f"--master-port must be a TCP port (1..65535), got {self.master_port}")
        if self.nnodes > 1 and not self.master_addr:
            raise BadInput(None, "--nnodes above 1 needs --master-addr (the address of the node with --node-rank 0)")
        check_world_size(self.world_size, micro_steps_per_step)


def check_world_size(world_size: int, micro_steps_per_step: int) -> None:
    """Each process runs micro_steps_per_step / world_size micro-steps, so the world size must divide it."""
    if world_size < 1 or micro_steps_per_step % world_size:
        divisors = [d for d in range(1, micro_steps_per_step + 1) if micro_steps_per_step % d == 0]
        raise BadInput(
            None,
            f"{world_size} processes cannot share the recipe's {micro_steps_per_step} micro-steps per step: "
            f"use a total GPU count of {', '.join(map(str, divisors))}",
        )


def torchrun_command(topology: Topology, worker_args: list[str]) -> list[str]:
    """The torch.distributed.run command line that starts this node's workers of `speedrun train`."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={topology.nproc_per_node}"]
    if topology.nnodes == 1 and topology.master_addr is None and topology.master_port is None:
        command.append("--standalone")  # a private rendezvous on a free port: two runs on one host never clash
    else:
        command += [
            f"--nnodes={topology.nnodes}",
            f"--node-rank={topology.node_rank}",
            f"--master-addr={topology.master_addr or '127.0.0.1'}",
            f"--master-port={topology.master_port or DEFAULT_MASTER_PORT}",
        ]
    return [*command, "-m", "speedrun", "train", *worker_args]


def launch(topology: Topology, worker_args: list[str], stdout: IO[str] | None = None) -> int:
    """Run this node's workers to completion and return torch.distributed.run's exit code."""
    return run_to_the_end(torchrun_command(topology, worker_args), stdout=stdout)


def run_to_the_end(
    command: list[str], stdout: IO[str] | None = None, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> int:
    """Run a launcher (torch.distributed.run) to completion and return its exit code.

    Ctrl-C reaches the whole process group anyway; we wait for the launcher to stop its workers rather
    than leave them running, then let the KeyboardInterrupt go on."""
    process = subprocess.Popen(command, stdout=stdout, cwd=cwd, env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
