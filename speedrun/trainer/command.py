"""`speedrun train` and `speedrun data`: the command-line face of the trainer.

Everything that can be wrong with a run (track, recipe, preset, GPU count, data, log file) is checked here, before
any worker starts, so a mistake costs a one-line error rather than a failed multi-GPU launch.
"""

from __future__ import annotations

import json
import math
import re
import sys
import uuid
from contextlib import redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from speedrun.errors import BadInput
from speedrun.trainer.config import DEFAULT_DATA_DIR, DEFAULT_LOG_DIR

if TYPE_CHECKING:
    from rich.progress import Progress

    from speedrun.trainer.config import TrainConfig, TrainOptions

# headroom over the recipe's token count: BOS alignment skips the cut tails of documents
FINEWEB_MARGIN = 1.05
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

data_app = typer.Typer(
    help="Fetch the FineWeb token shards, or write synthetic ones for tests and smoke runs.",
    no_args_is_help=True,
)


# ------------------------------------------------------------------------------------------ speedrun data


def fineweb_shards_for(track: str) -> int:
    """Training shards the track's record recipe reads, plus a margin and one spare shard."""
    from speedrun.trainer.config import get_config
    from speedrun.trainer.shards import FINEWEB_TOKENS_PER_SHARD

    config = get_config(track)
    tokens = config.num_iterations * config.global_batch_tokens * FINEWEB_MARGIN
    return math.ceil(tokens / FINEWEB_TOKENS_PER_SHARD) + 1


def _refuse_non_folder(path: Path) -> None:
    """Shards and logs go into folders: a file in the way is bad input, never overwritten."""
    if path.exists() and not path.is_dir():
        raise BadInput(path, "exists and is not a folder")


def _shard_progress() -> Progress:
    """A progress bar on stderr, one tick per shard, gone once done."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from speedrun.console import err

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=err, transient=True)


def _refuse_synthetic_dir(data_dir: Path) -> None:
    from speedrun.trainer.shards import SYNTHETIC_MANIFEST

    if (data_dir / SYNTHETIC_MANIFEST).exists():
        raise BadInput(data_dir, f"holds synthetic shards ({SYNTHETIC_MANIFEST}); fetch FineWeb into another --dir")


@data_app.command()
def fineweb(
    train_shards: int | None = typer.Option(
        None,
        "--train-shards",
        help="Training shards of 100M tokens to fetch. Default: what the track's record recipe reads, plus a "
        "margin (small: 8, i.e. 0.8B tokens; medium: 34).",
        show_default=False,
    ),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--dir", help="Folder to put the shards in."),
    track: str = typer.Option("small", "--track", help="Track whose recipe sets the default shard count."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object with the outcome per file."),
) -> None:
    """Fetch GPT-2-tokenised FineWeb shards (Hugging Face dataset kjj0/fineweb10B-gpt2).

    The validation shard and the first N training shards go into --dir. Files
    already there and valid are kept. Each file's header and size are checked;
    a corrupt or partial one is moved aside and fetched again. Downloads go
    through the Hugging Face cache (HF_HOME, HF_HUB_CACHE); with
    HF_HUB_OFFLINE=1 the cache alone is used. A hub that cannot be reached
    (HF_ENDPOINT names a mirror) is reported at once, before anything starts.
    """
    from speedrun.console import err, out
    from speedrun.trainer import hub
    from speedrun.trainer.data import read_shard_header
    from speedrun.trainer.shards import FINEWEB_REPO, FetchedShard, fetch_fineweb_shard, fineweb_shard_names

    shards = fineweb_shards_for(track) if train_shards is None else train_shards
    names = fineweb_shard_names(shards)
    _refuse_non_folder(data_dir)
    _refuse_synthetic_dir(data_dir)
    if not _all_valid([data_dir / name for name in names]):  # something to download: can we?
        hub.require_client()
        hub.require_hub(FINEWEB_REPO)
    data_dir.mkdir(parents=True, exist_ok=True)

    results: list[FetchedShard] = []
    with _shard_progress() as progress:
        task = progress.add_task("FineWeb shards", total=len(names))
        for name in names:
            progress.update(task, description=f"FineWeb {name}")
            result = fetch_fineweb_shard(data_dir, name)
            if result.status == "replaced":
                err.print(
                    f"[yellow]warning:[/] {result.path}: was corrupt ({result.problem}); fetched again", soft_wrap=True
                )
            results.append(result)
            progress.advance(task)

    if as_json:
        rows = [
            {"file": str(r.path), "status": r.status, "tokens": read_shard_header(r.path), "problem": r.problem}
            for r in results
        ]
        out.print_json(json.dumps({"dir": str(data_dir), "files": rows}))
        return
    for status in ("present", "fetched", "replaced"):
        count = sum(r.status == status for r in results)
        if count:
            out.print(f"{count} shard(s) {status}")
    out.print(f"FineWeb: {len(results)} valid shards in {data_dir}")


@data_app.command()
def synthetic(
    data_dir: Path = typer.Option(..., "--dir", help="Folder to write the shards into (created if needed)."),
    train_shards: int = typer.Option(4, "--train-shards", min=1, help="Training shards to write."),
    tokens_per_shard: int = typer.Option(
        25_000_000,
        "--tokens-per-shard",
        min=1024,
        help="Tokens per training shard. The default 4 x 25M feed about 250 steps of the small record's "
        "batch before the loader starts over; the tiny preset needs far fewer.",
    ),
    val_tokens: int = typer.Option(
        10_485_761,
        "--val-tokens",
        min=2,
        help="Tokens in the validation shard: the recipes validate on 10,485,760 tokens plus one target.",
    ),
    language: str = typer.Option(
        "zipf",
        "--language",
        help="zipf: the whole GPT-2 vocabulary, whose loss keeps falling for hundreds of steps of the full "
        "model (for comparing recipes); order2: 511 token ids, learnt within a few dozen steps (for quick "
        "CPU runs and tests).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic language and of every shard."),
    force: bool = typer.Option(False, "--force", help="Replace shards already in --dir (FineWeb ones included)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object listing the files written."),
) -> None:
    """Write synthetic token shards: FineWeb's file names and format, seeded content.

    Documents start with the end-of-text token 50256. Each shard's header
    names its language (FineWeb leaves those slots at zero), and the trainer's
    log repeats it, so a run on synthetic data is never mistaken for one on
    FineWeb. For tests and smoke runs where FineWeb is not at hand. Running it
    again with the same settings keeps the shards already written.
    """
    from speedrun.trainer.data import TRAIN_PATTERN, VAL_PATTERN
    from speedrun.trainer.shards import SYNTHETIC_MANIFEST, language_settings, write_synthetic
    from speedrun.trainer.shards import language as make_language

    _refuse_non_folder(data_dir)
    manifest_path = data_dir / SYNTHETIC_MANIFEST
    manifest = {
        "language": language_settings(make_language(language, seed)),
        "train_shards": train_shards,
        "tokens_per_shard": tokens_per_shard,
        "val_tokens": val_tokens,
    }
    existing = sorted(data_dir.glob(TRAIN_PATTERN)) + sorted(data_dir.glob(VAL_PATTERN)) if data_dir.is_dir() else []
    if existing and not force:
        if _manifest_matches(manifest_path, manifest) and _all_valid(existing):
            _report_synthetic(existing, data_dir, as_json, reused=True)
            return
        raise BadInput(
            data_dir,
            f"already holds {len(existing)} shard(s) made otherwise; "
            "pass --force to replace them or choose another --dir",
        )
    for path in existing:
        path.unlink()
    manifest_path.unlink(missing_ok=True)

    with _shard_progress() as progress:
        task = progress.add_task(f"synthetic shards ({language})", total=train_shards + 1)
        written = write_synthetic(
            data_dir,
            train_shards,
            tokens_per_shard,
            val_tokens,
            seed,
            on_shard=lambda _: progress.advance(task),
            language_name=language,
        )
    # written last: its presence says the shards beside it are complete
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    _report_synthetic(written, data_dir, as_json, reused=False)


def _manifest_matches(path: Path, manifest: dict[str, Any]) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")) == manifest
    except (OSError, ValueError):
        return False


def _all_valid(paths: list[Path]) -> bool:
    """Every shard's header and size are sound."""
    from speedrun.trainer.data import read_shard_header

    try:
        for p in paths:
            read_shard_header(p)
    except BadInput:
        return False
    return True


def _report_synthetic(paths: list[Path], data_dir: Path, as_json: bool, reused: bool) -> None:
    from speedrun.console import out
    from speedrun.trainer.data import read_shard_header

    tokens = {str(p): read_shard_header(p) for p in paths}
    if as_json:
        out.print_json(json.dumps({"dir": str(data_dir), "reused": reused, "files": tokens}))
        return
    verb = "already there" if reused else "written"
    out.print(f"synthetic: {len(paths)} shards {verb} in {data_dir} ({sum(tokens.values()):,} tokens)")


# ------------------------------------------------------------------------------------------ speedrun train


def train(
    track: str = typer.Option("small", "--track", help="small (GPT-2 Small, target 3.28) or medium (2.92)."),
    recipe: str | None = typer.Option(
        None,
        "--recipe",
        help="The recipe, named after the month of the record it follows: small 2025-08 (record 28, the "
        "default) or 2026-05 (record 84; slower than its record), medium 2025-04 (medium record 8, the default).",
    ),
    preset: str | None = typer.Option(
        None, "--preset", help="A variant of the track's recipe: 'tiny' trains a few-layer model on a CPU."
    ),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cuda or cpu."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="Folder holding the token shards."),
    log_dir: Path = typer.Option(DEFAULT_LOG_DIR, "--log-dir", help="Folder for the run log <run-id>.txt."),
    steps: int | None = typer.Option(None, "--steps", help="Train this many steps instead of the recipe's."),
    val_every: int | None = typer.Option(
        None, "--val-every", help="Validate every N steps (0: only at the end). Default: the recipe's."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed. Default: the recipe's."),
    no_compile: bool = typer.Option(
        False,
        "--no-compile",
        help="Leave the model uncompiled (FlexAttention is still compiled on its own). CUDA only.",
    ),
    serial_compile: bool = typer.Option(
        False,
        "--serial-compile",
        help="2026-05 recipe: compile the batch lengths one after another in the warm-up, not side by side in "
        "helper processes (alone on a GPU: each needs GPU memory for one micro-batch) or across local ranks.",
    ),
    attention: str | None = typer.Option(
        None,
        "--attention",
        help="2026-05 recipe: the attention kernel on a GPU: auto (the default: fa4 where it runs, else flex), "
        "flex (FlexAttention, installed with PyTorch) or fa4 (flash-attn-4, faster on Hopper and newer: "
        "pip install 'speedrun[fa4]').",
    ),
    run_id: str | None = typer.Option(None, "--run-id", help="Name of the log file. Default: a fresh UUID."),
    nproc_per_node: int = typer.Option(
        1, "--nproc-per-node", help="Worker processes (GPUs) on this node; the total must divide the recipe's 8."
    ),
    nnodes: int = typer.Option(1, "--nnodes", help="Machines in the job (multi-node: run the command on each)."),
    node_rank: int = typer.Option(0, "--node-rank", help="This machine's index, 0..nnodes-1."),
    master_addr: str | None = typer.Option(None, "--master-addr", help="Address of the --node-rank 0 machine."),
    master_port: int | None = typer.Option(
        None, "--master-port", help="A free TCP port on the --node-rank 0 machine (default 29500)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Send progress to stderr and print one JSON object (log file, run id) to stdout."
    ),
) -> None:
    """Train the reference model of a track and write its log for `speedrun judge`.

    With --nproc-per-node N above 1 the workers start through
    torch.distributed.run; running it under torchrun yourself works too:

        torchrun --nproc-per-node 8 -m speedrun train --track small

    With 1, 2, 4 or 8 GPUs the global batch and the math are the same: each
    process accumulates gradients over fewer micro-steps.
    """
    from speedrun.trainer.config import TrainOptions
    from speedrun.trainer.launch import (
        Topology,
        check_world_size,
        inside_torchrun,
        launch,
        rank_from_env,
        world_size_from_env,
    )

    if device not in ("auto", "cuda", "cpu"):
        raise BadInput(None, f"--device must be auto, cuda or cpu, got {device!r}")
    if run_id is not None and not RUN_ID.fullmatch(run_id):
        raise BadInput(None, f"--run-id {run_id!r}: use letters, digits, '.', '_' and '-' only")
    options = TrainOptions(
        track=track,
        preset=preset,
        recipe=recipe,
        device=device,  # type: ignore[arg-type]  # checked above
        data_dir=data_dir,
        log_dir=log_dir,
        steps=steps,
        val_every=val_every,
        seed=seed,
        compile=not no_compile,
        parallel_compile=not serial_compile,
        attention=attention,
        run_id=run_id,
    )
    config = options.resolve_config()
    in_worker = inside_torchrun()
    topology = Topology(nproc_per_node, nnodes, node_rank, master_addr, master_port)
    if in_worker:
        check_world_size(world_size_from_env(), config.data.micro_steps_per_step)
    else:
        topology.validate(config.data.micro_steps_per_step)
    check_data(data_dir, config)
    check_log_dir(log_dir, run_id)

    if in_worker or topology.world_size == 1:
        from speedrun.trainer.train import RunInterrupted

        try:
            log_file = _train_here(options, as_json)
        except RunInterrupted as stopped:
            _report_interrupted(stopped.partial_log, quiet=rank_from_env() != 0)
        if rank_from_env() == 0:
            _report_run(log_file, as_json)
        return

    _check_devices(device, topology.nproc_per_node)
    run_id = run_id or str(uuid.uuid4())
    worker_args = _worker_args(options, run_id)
    try:
        code = launch(topology, worker_args, stdout=sys.stderr if as_json else None)
    except KeyboardInterrupt:
        partial = log_dir / f"{run_id}.txt.interrupted"
        _report_interrupted(partial if partial.exists() else None, quiet=topology.node_rank != 0)
    if code != 0:
        from speedrun.console import error

        error(f"training workers failed (torch.distributed.run exit code {code}); see their messages above")
        raise typer.Exit(1)
    if topology.node_rank == 0:
        _report_run(log_dir / f"{run_id}.txt", as_json)


def check_data(data_dir: Path, config: TrainConfig) -> None:
    """The shards exist, their headers are sound and the validation shard is long enough for the recipe."""
    from speedrun.trainer.data import read_shard_header, train_files, val_files

    train_files(data_dir)
    val = val_files(data_dir)
    have = sum(read_shard_header(f) for f in val)
    need = config.data.val_tokens + 1
    if have < need:
        raise BadInput(
            val[0],
            f"holds {have:,} validation tokens but the recipe validates on {need - 1:,} (plus one target); "
            f"write a longer one with `speedrun data synthetic --dir {data_dir} --val-tokens {need} "
            "--force` or fetch FineWeb",
        )


def check_log_dir(log_dir: Path, run_id: str | None) -> None:
    """The log can be written and would not overwrite an earlier run's."""
    _refuse_non_folder(log_dir)
    if run_id is not None and (log_dir / f"{run_id}.txt").exists():
        raise BadInput(log_dir / f"{run_id}.txt", "a log with this run id exists already; choose another --run-id")


def _check_devices(device: str, nproc_per_node: int) -> None:
    """A multi-process CUDA run needs one GPU per process."""
    if device == "cpu":
        return
    import torch

    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "cuda" and available == 0:
        raise BadInput(None, "--device cuda, but PyTorch sees no CUDA GPU")
    if available and nproc_per_node > available:
        raise BadInput(None, f"--nproc-per-node {nproc_per_node}, but this node has only {available} GPU(s)")


def _train_here(options: TrainOptions, as_json: bool) -> Path:
    from speedrun.trainer.train import train as run_training

    if as_json:
        with redirect_stdout(sys.stderr):
            return run_training(options)
    return run_training(options)


def _worker_args(options: TrainOptions, run_id: str) -> list[str]:
    """The `speedrun train` options that make each worker run exactly this run."""
    args = ["--track", options.track, "--device", options.device]
    args += ["--data-dir", str(options.data_dir), "--log-dir", str(options.log_dir), "--run-id", run_id]
    if options.preset:
        args += ["--preset", options.preset]
    if options.recipe:
        args += ["--recipe", options.recipe]
    for flag, value in (("--steps", options.steps), ("--val-every", options.val_every), ("--seed", options.seed)):
        if value is not None:
            args += [flag, str(value)]
    if not options.compile:
        args.append("--no-compile")
    if not options.parallel_compile:
        args.append("--serial-compile")
    if options.attention:
        args += ["--attention", options.attention]
    return args


def _report_interrupted(partial_log: Path | None, quiet: bool) -> None:
    """One line saying where the partial log of an interrupted run went, then exit code 130 (as for SIGINT)."""
    from speedrun.console import error

    if not quiet:
        where = (
            f"its partial log is {partial_log} (renamed so that the judge does not count it)"
            if partial_log is not None
            else "no log was written"
        )
        error(f"training interrupted; {where}")
    raise typer.Exit(130)


def _report_run(log_file: Path, as_json: bool) -> None:
    from speedrun.console import out

    if as_json:
        out.print_json(json.dumps({"log": str(log_file), "run_id": log_file.stem}))
    else:
        out.print(f"log: {log_file}")
