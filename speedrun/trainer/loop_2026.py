"""The training loop of the 2026-05 recipe (record 84): staged batches, NorMuon every step, Adam every other
step, the embedding tied to the head until the schedule unties them, YaRN when the long window grows.

One step, as record 84 takes it:
1. the step's plan (stages.py): batch size, document cap, windows, learning-rate multiplier, momentum, the
   multi-token weights; if the long window grew, YaRN rescales the rotary embedding;
2. micro-batches of capped documents (documents.py), per-token losses summed and divided by the step's
   micro-steps, backward;
3. NorMuon steps the hidden matrices; on odd steps Adam steps the rest with the gradients of two steps; while
   tied, the embedding's gradient (transposed) joins the head's and the head's new weights are copied back
   into the embedding; at the untie step Adam's state of the head is copied (transposed) to the embedding.

train.py runs the log, the clock and validation around it, as for every recipe.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor

from speedrun.trainer.adam import CautiousAdam
from speedrun.trainer.config import Model2026Config, Optim2026Config, StagedSchedule, TrainConfig, with_attention_for
from speedrun.trainer.documents import DocumentBatch, DocumentLoader, val_document_batches
from speedrun.trainer.layers.embeddings import bigram_hash
from speedrun.trainer.model_2026 import GPT2026
from speedrun.trainer.normuon import NorMuon
from speedrun.trainer.optim import all_reduce_gradients
from speedrun.trainer.precompile import CompileHelpers, first_step_per_graph, start_helpers
from speedrun.trainer.stages import StepPlan, plan, transition_steps


@dataclass
class Optimizers:
    """NorMuon for the hidden matrices, Adam for the rest, and whether the embedding is still tied."""

    muon: NorMuon
    adam: CautiousAdam
    tied: bool = True

    def state(self) -> tuple[dict, dict, bool]:
        return copy.deepcopy(self.muon.state_dict()), copy.deepcopy(self.adam.state_dict()), self.tied

    def restore(self, state: tuple[dict, dict, bool]) -> None:
        self.muon.load_state_dict(state[0])
        self.adam.load_state_dict(state[1])
        self.tied = state[2]


def build_model(config: TrainConfig, device: torch.device, world_size: int, fp8: bool, compiled: bool) -> GPT2026:
    assert isinstance(config.model, Model2026Config)
    torch.manual_seed(config.seed)
    model = GPT2026(config.model, config.data.val_micro_batch_tokens, config.data.micro_steps_per_step).to(device)
    if device.type == "cuda":
        # the tables, the head and the gates are stored in bf16, as the record stores them
        for p in (model.embed, model.head, model.value_embeds, model.bigram_embed, model.attention_gates,
                  model.value_embed_gates, model.skip_gate, getattr(model.smear, "gate", None)):  # fmt: skip
            if p is not None:
                p.data = p.data.bfloat16()
    model.fp8_head = fp8 and config.model.fp8_head
    model.fp8_mlp = fp8 and config.model.fp8_mlp_up
    if world_size > 1:
        for p in model.parameters():
            dist.broadcast(p.detach(), 0)
    if compiled and device.type == "cuda":
        model.hidden_states = torch.compile(model.hidden_states, dynamic=False)  # type: ignore[method-assign]
    return model


def build_optimizers(model: GPT2026, config: TrainConfig, rank: int, world_size: int) -> Optimizers:
    optim = config.optim
    assert isinstance(optim, Optim2026Config)
    named = model.adam_groups()
    adam_groups = []
    for group in optim.adam.groups:
        params = [p for p in named.pop(group.name) if p is not None]
        if params:
            lr = optim.adam.lr * group.lr_mul
            adam_groups.append(
                dict(params=params, name=group.name, betas=group.betas, lr=lr, initial_lr=lr,
                     weight_decay=optim.adam.weight_decay * group.wd_mul)
            )  # fmt: skip
    leftover = [name for name, params in named.items() if params]
    if leftover:
        raise ValueError(f"the recipe's Adam groups leave out {leftover}")
    adam = CautiousAdam(adam_groups, lr=optim.adam.lr, betas=(0.9, 0.99), eps=optim.adam.eps)
    muon_config = optim.muon
    muon_groups = [
        dict(params=params, name=name, lr_factor=muon_config.mlp_out_lr_mult if name == "mlp_out" else 1.0)
        for name, params in model.muon_groups().items()
        if params
    ]
    muon = NorMuon(
        muon_groups, lr=muon_config.lr, momentum=muon_config.momentum, beta2=muon_config.beta2,
        weight_decay=muon_config.weight_decay, rank=rank, world_size=world_size,
    )  # fmt: skip
    for group in muon.param_groups:
        group["initial_lr"] = group["lr"]
    covered = {id(p) for opt in (adam, muon) for g in opt.param_groups for p in g["params"]}
    assert covered == {id(p) for p in model.parameters()}, "every parameter has exactly one optimiser"
    return Optimizers(muon, adam)


def set_hyperparameters(optimizers: Optimizers, step_plan: StepPlan) -> None:
    for group in (*optimizers.muon.param_groups, *optimizers.adam.param_groups):
        group["lr"] = group["initial_lr"] * step_plan.lr_multiplier
    for group in optimizers.muon.param_groups:
        group["momentum"] = step_plan.muon_momentum


def optimizer_step(model: GPT2026, optimizers: Optimizers, step_plan: StepPlan, world_size: int) -> None:
    """Step NorMuon (every step) and Adam (on its steps), handling the tied embedding and the untying."""
    hidden = [p for group in optimizers.muon.param_groups for p in group["params"]]
    all_reduce_gradients(hidden, world_size)
    set_hyperparameters(optimizers, step_plan)
    optimizers.muon.step()
    for p in hidden:
        p.grad = None
    if not step_plan.adam_step:
        return  # Adam's gradients keep accumulating
    rest = [p for group in optimizers.adam.param_groups for p in group["params"]]
    all_reduce_gradients(rest, world_size)
    if optimizers.tied:
        if model.embed.grad is not None:
            model.head.grad.add_(model.embed.grad.t())
        model.embed.grad = None  # stepped through the head
    optimizers.adam.step()
    if optimizers.tied:
        with torch.no_grad():
            model.embed.copy_(model.head.t())
    if step_plan.untie:
        untie(model, optimizers)
    for p in rest:
        p.grad = None


def untie(model: GPT2026, optimizers: Optimizers) -> None:
    """From now on the embedding is a parameter of its own, starting from the head's Adam state (transposed)."""
    head_state = optimizers.adam.state[model.head]
    optimizers.adam.state[model.embed] = {
        "step": head_state["step"],
        "exp_avg": head_state["exp_avg"].t().contiguous(),
        "exp_avg_sq": head_state["exp_avg_sq"].t().contiguous(),
    }
    optimizers.tied = False


class Trainer2026:
    """The 2026-05 recipe's side of train.py: the model, the optimisers, the loader and the schedule's state."""

    def __init__(self, config: TrainConfig, device: torch.device, rank: int, world_size: int, fp8: bool,
                 compiled: bool, train_paths: list[Path], local_rank: int = 0, local_world_size: int = 1,
                 parallel_compile: bool = False) -> None:  # fmt: skip
        assert isinstance(config.schedule, StagedSchedule)
        config = with_attention_for(config, device.type)  # train() settles it before logging; others here
        self.config, self.device, self.rank, self.world_size = config, device, rank, world_size
        self.fp8, self.local_rank, self.local_world_size = fp8, local_rank, local_world_size
        # compile the schedule's graphs side by side (precompile.py): only where there is something to compile
        self.parallel_compile = parallel_compile and compiled and device.type == "cuda"
        self.model = build_model(config, device, world_size, fp8, compiled)
        self.optimizers = build_optimizers(self.model, config, rank, world_size)
        self.train_paths = train_paths
        self.loader: DocumentLoader | None = None
        longs = [stage.windows[1] for stage in config.schedule.stages]
        self.long_windows = [w for i, w in enumerate(longs) if i == 0 or w != longs[i - 1]]  # as training meets them
        self.long_window = self.long_windows[0]

    @property
    def micro_steps(self) -> int:
        return self.config.data.micro_steps_per_step

    def advance(self, step: int) -> StepPlan:
        """The plan of `step`, growing the rotary embedding with YaRN when the long window grows: through each
        stage's long window in turn, as training meets them, also when a caller jumps ahead (a compile helper, a
        profile). YaRN's attention scale, a constant of the compiled graph, depends on the windows it went
        through (3, 7 then 11 blocks is not 3 then 11)."""
        step_plan = plan(step, self.config)
        new_long = step_plan.windows[1]
        if new_long != self.long_window:
            at, to = self.long_windows.index(self.long_window), self.long_windows.index(new_long)
            assert to > at, "the schedule only goes forward: restart_schedule() first"
            for old, new in zip(self.long_windows[at:to], self.long_windows[at + 1 : to + 1], strict=True):
                self.model.rotary.extend(old * 128, new * 128)
            self.long_window = new_long
        return step_plan

    def bigrams(self, inputs: Tensor) -> Tensor:
        return (
            bigram_hash(inputs, self.config.model.bigram_vocab_size) if self.model.bigram_embed is not None else inputs
        )

    def train_step(self, step_plan: StepPlan, batches: Iterator[DocumentBatch] | None = None) -> Tensor:
        """One step; returns this process's share of the summed loss (divided by the micro-steps)."""
        if self.loader is None and batches is None:
            self.loader = DocumentLoader(self.train_paths, self.rank, self.world_size)  # on the host: see on_device
        tokens = step_plan.batch_tokens // self.micro_steps
        loss_sum = torch.zeros((), device=self.device)
        for _ in range(self.micro_steps // self.world_size):
            if batches is not None:
                batch = next(batches)
            else:
                batch = self.on_device(self.loader.next(tokens, step_plan.max_seq_len))  # type: ignore[union-attr]
            loss_sum += self.micro_step(step_plan, batch)
        optimizer_step(self.model, self.optimizers, step_plan, self.world_size)
        return loss_sum

    def micro_step(self, step_plan: StepPlan, batch: DocumentBatch) -> Tensor:
        """Forward and backward of one micro-batch, its gradients added to the step's; returns its loss share."""
        packed = (batch.inputs, batch.targets, batch.cu_seqlens, self.bigrams(batch.inputs))
        losses = self.model(*packed, step_plan.windows, step_plan.mtp_weights)
        loss = losses.sum() / self.micro_steps
        loss.backward()
        return loss.detach()

    def on_device(self, batch: DocumentBatch) -> DocumentBatch:
        """A micro-batch copied to the GPU from pinned memory. From pageable memory the copy would first wait for
        the GPU to finish all it was given, at every micro-step, leaving it idle while the host queued the next
        one; from pinned memory it is queued like a kernel and the host goes on."""
        if self.device.type != "cuda":
            return batch
        return DocumentBatch(*(t.pin_memory().to(self.device, non_blocking=True) for t in vars(batch).values()))

    @torch.no_grad()
    def evaluate(self, step_plan: StepPlan, val_paths: list[Path], last: bool) -> float:
        """Mean loss per token over the validation tokens (the last validation with the long window widened)."""
        self.model.eval()
        short, long = step_plan.windows
        windows = (short, self.config.schedule.final_long_window if last else long)  # type: ignore[union-attr]
        data = self.config.data
        totals = torch.zeros(2, device=self.device, dtype=torch.float64)
        for batch in val_document_batches(
            val_paths, data.val_tokens, data.val_micro_batch_tokens, self.rank, self.world_size, self.device
        ):
            losses = self.model(batch.inputs, batch.targets, batch.cu_seqlens, self.bigrams(batch.inputs), windows)
            totals[0] += losses.double().sum()
            totals[1] += losses.numel()
        if self.world_size > 1:
            dist.all_reduce(totals, op=dist.ReduceOp.SUM)
        self.model.train()
        return float(totals[0] / totals[1])

    def warm_up(self) -> None:
        """Compile and exercise each stage's shapes on random documents, then restore every state: weights,
        optimisers, the rotary embedding, the tie."""
        model_state = copy.deepcopy(self.model.state_dict())
        optimizer_state = self.optimizers.state()
        schedule = self.config.schedule
        assert isinstance(schedule, StagedSchedule)
        steps = sorted({0, 1} | {s + d for s in transition_steps(schedule) for d in (-1, 0) if s + d >= 2})
        generator = torch.Generator().manual_seed(1234 + self.rank)
        helpers = self.compile_side_by_side(steps, generator)
        first_graph = compiled_graph(self.config, steps[0])
        for step in steps:
            if helpers is not None and compiled_graph(self.config, step) != first_graph:
                with self.timed("waiting for the compile helpers"):
                    helpers.wait()  # the later graphs are in the caches now
                helpers = None
            with self.timed(f"warm-up step {step}"):
                step_plan = self.advance(step)
                self.train_step(step_plan, self.random_batches(step_plan, generator))
        if helpers is not None:
            helpers.wait()
        self.model.load_state_dict(model_state)
        self.optimizers.restore(optimizer_state)
        self.restart_schedule()
        self.model.zero_grad(set_to_none=True)

    @contextmanager
    def timed(self, what: str) -> Iterator[None]:
        """Say how long `what` took, on a GPU's first rank: where the minutes of compiling go."""
        started = time.perf_counter()
        yield
        if self.device.type == "cuda" and self.rank == 0:
            torch.cuda.synchronize(self.device)
            print(f"{what}: {time.perf_counter() - started:.1f}s", flush=True)

    def random_batches(self, step_plan: StepPlan, generator: torch.Generator) -> Iterator[DocumentBatch]:
        """Micro-batches of random documents shaped as `step_plan`'s, for compiling and warming up."""
        tokens = step_plan.batch_tokens // self.micro_steps
        return random_documents(tokens, step_plan.max_seq_len, generator, self.device)

    def restart_schedule(self) -> None:
        """Back to step 0's rotary embedding and windows."""
        self.model.rotary.reset()
        self.long_window = self.long_windows[0]

    def compile_side_by_side(self, steps: list[int], generator: torch.Generator) -> CompileHelpers | None:
        """Compile the graphs at once (precompile.py): those after the first in helper processes when training
        alone (returned, to wait for); else shared out over the node's local ranks, in turn, here."""
        if not self.parallel_compile:
            return None
        firsts = first_step_per_graph(steps, lambda step: compiled_graph(self.config, step))
        if self.world_size == 1:
            if len(firsts) < 2:
                return None
            print(f"compiling {len(firsts)} graphs, {len(firsts) - 1} in helper processes", flush=True)
            return start_helpers(self.config, firsts[1:], self.device, self.fp8)
        if self.rank == 0:
            print(f"compiling {len(firsts)} graphs over {self.local_world_size} local ranks", flush=True)
        for step in firsts[self.local_rank :: self.local_world_size]:
            step_plan = self.advance(step)
            self.micro_step(step_plan, next(self.random_batches(step_plan, generator)))
        self.model.zero_grad(set_to_none=True)
        self.restart_schedule()
        dist.barrier()
        return None


def compiled_graph(config: TrainConfig, step: int) -> tuple[int, tuple[int, int]]:
    """What the compiled body is specialised to at `step`: the micro-batch length, in tokens, and the windows (as
    Python numbers, constants of the graph, as is the attention scale that YaRN grows with the long window)."""
    step_plan = plan(step, config)
    return step_plan.batch_tokens // config.data.micro_steps_per_step, step_plan.windows


def random_documents(
    tokens: int, max_seq_len: int, generator: torch.Generator, device: torch.device
) -> Iterator[DocumentBatch]:
    """Random micro-batches shaped as the loader's: documents of up to `max_seq_len` tokens."""
    from speedrun.trainer.documents import max_documents

    while True:
        seq = torch.randint(0, 50257, (tokens + 1,), generator=generator)
        ends = [*range(max_seq_len, tokens, max_seq_len)][: max_documents(tokens) - 2]
        ends.append(tokens)
        cu = torch.full((max_documents(tokens),), tokens, dtype=torch.int32)
        cu[1 : len(ends) + 1] = torch.tensor(ends, dtype=torch.int32)
        cu[0] = 0
        yield DocumentBatch(seq[:-1].to(torch.int32).to(device), seq[1:].to(device), cu.to(device))
