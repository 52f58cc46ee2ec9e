"""Hyperparameters, one typed config per track, and the runtime options of a training run.

`ModelConfig` and `TrainConfig` are the recipe: they go into the log verbatim, so two runs with the same
config are the same experiment. `TrainOptions` is how this particular run is executed (device, paths,
overrides) and is not part of the recipe.

The record figures (dims, learning rates, schedules, window sizes) follow the published records of each
track: the ~3-minute small-track records of 2025 (1750 steps of 8 x 48Ki tokens) and the 2025 medium-track
record (5960 steps of 8 x 64Ki tokens).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from speedrun.errors import BadInput
from speedrun.tracks import canonical_name

GPT2_VOCAB_SIZE = 50257
PADDED_VOCAB_SIZE = 50304  # next multiple of 128: the head matmul runs faster on aligned shapes
ATTENTION_BLOCK_SIZE = 128  # attention windows are whole multiples of this many tokens
DEFAULT_DATA_DIR = Path("data/fineweb10B")
DEFAULT_LOG_DIR = Path("logs")

SoftcapKind = Literal["tanh", "algebraic"]
WindowSchedule = Literal["linear", "cubic"]


def unet_skips(num_layers: int) -> tuple[tuple[int, int], ...]:
    """U-net pairs (source layer, target layer): the output of encoder layer i feeds decoder layer L-1-i."""
    half = num_layers // 2
    return tuple((half - 1 - k, half + k) for k in range(half))


@dataclass(frozen=True)
class ModelConfig:
    """The shape of the network. Every layer index is 0-based."""

    num_layers: int
    model_dim: int
    num_heads: int
    head_dim: int = 128
    vocab_size: int = PADDED_VOCAB_SIZE
    mlp_ratio: int = 4
    layers_without_attention: tuple[int, ...] = ()
    long_window_layers: tuple[int, ...] = ()  # the other attention layers use half the window
    # (source, target): the output of layer `source` is added, with a learned weight, to the input of `target`
    skip_connections: tuple[tuple[int, int], ...] = ()
    # value embeddings feed the first and the last `value_embed_count` layers, in the same order (012...012)
    value_embed_count: int = 3
    normalize_values: bool = False
    attn_scale: float = 0.12
    rope_min_frequency: float = 1 / 1024
    logit_softcap: float = 15.0
    softcap_kind: SoftcapKind = "tanh"
    fp8_head: bool = False  # used only where the GPU supports FP8 (Hopper); bf16 elsewhere
    # FP8 scales of the head matmul: input, weight, output gradient
    fp8_scales: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def value_embed_layers(self) -> tuple[int | None, ...]:
        """For each layer, which value embedding it mixes into its values (None: none)."""
        n = self.value_embed_count
        middle = self.num_layers - 2 * n
        return tuple(range(n)) + (None,) * middle + tuple(range(n))

    def validate(self) -> None:
        """Refuse a shape whose layer indices do not fit the number of layers."""
        layers = range(self.num_layers)
        if self.num_layers < 1 or 2 * self.value_embed_count > self.num_layers:
            raise BadInput(None, f"model config: {self.num_layers} layers cannot hold 2 x {self.value_embed_count}")
        for name in ("layers_without_attention", "long_window_layers"):
            if any(i not in layers for i in getattr(self, name)):
                raise BadInput(None, f"model config: {name} names a layer outside 0..{self.num_layers - 1}")
        if any(not (0 <= s < t < self.num_layers) for s, t in self.skip_connections):
            raise BadInput(None, "model config: a skip connection must go from an earlier layer to a later one")


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe of one track (or of a preset of it)."""

    track: str
    preset: str | None
    model: ModelConfig
    num_iterations: int
    micro_batch_tokens: int  # tokens per micro-step per process (one sequence of documents packed end to end)
    micro_steps_per_step: int = 8  # global batch = micro_steps_per_step * micro_batch_tokens
    val_tokens: int = 10_485_760
    val_micro_batch_tokens: int = 4 * 64 * 1024
    val_every: int = 125
    seed: int = 0
    align_to_bos: bool = True
    # learning-rate schedule: constant, then a linear decay over the last `cooldown_frac` of training
    cooldown_frac: float = 0.45
    final_lr_fraction: float = 0.05
    # Adam (embeddings, head, scalars)
    adam_betas: tuple[float, float] = (0.8, 0.95)
    adam_eps: float = 1e-10
    lr_embed: float = 0.6
    lr_value_embed: float = 0.6
    lr_head: float = 0.22
    lr_scalars: float = 0.04
    # Muon (the hidden matrices)
    muon_lr: float = 0.05
    muon_momentum: float = 0.95
    muon_momentum_start: float = 0.85
    muon_momentum_warmup_steps: int = 300
    muon_weight_decay: float = 0.0
    mlp_weight_decay_mult: float = 1.0
    newton_schulz_steps: int = 5
    # attention window (tokens): grows from one block to `window_max` over training
    window_max: int = 1792
    window_schedule: WindowSchedule = "linear"
    # untimed compile-and-warmup steps on dummy data before the clock starts
    warmup_steps: int = 10

    @property
    def global_batch_tokens(self) -> int:
        return self.micro_steps_per_step * self.micro_batch_tokens

    def to_json(self) -> str:
        """One line of JSON, as written into the log."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"), sort_keys=False)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


SMALL_MODEL = ModelConfig(
    num_layers=12,
    model_dim=768,
    num_heads=6,
    layers_without_attention=(7,),
    long_window_layers=(0, 4, 7, 11),
    skip_connections=unet_skips(12),
    softcap_kind="tanh",
    fp8_head=True,
    fp8_scales=(768**0.5 / 448, 24 / 448, 1 / 448),
)

MEDIUM_MODEL = ModelConfig(
    num_layers=16,
    model_dim=1024,
    num_heads=8,
    layers_without_attention=(7,),
    long_window_layers=(0, 4, 11, 15),
    skip_connections=((6, 9), (4, 10), (2, 11)),
    normalize_values=True,
    softcap_kind="algebraic",
)

SMALL = TrainConfig(
    track="track_1_short",
    preset=None,
    model=SMALL_MODEL,
    num_iterations=1750,
    micro_batch_tokens=48 * 1024,
)

MEDIUM = TrainConfig(
    track="track_2_medium",
    preset=None,
    model=MEDIUM_MODEL,
    num_iterations=5960,
    micro_batch_tokens=64 * 1024,
    cooldown_frac=0.7,
    final_lr_fraction=0.0,
    lr_embed=0.3,
    lr_value_embed=0.3,
    lr_head=1 / 320,
    lr_scalars=0.015,
    muon_lr=0.025,
    muon_weight_decay=0.01,
    mlp_weight_decay_mult=2.0,
    window_max=3456,
    window_schedule="cubic",
)


def _tiny(base: TrainConfig) -> TrainConfig:
    """A few-layer model that trains 50 steps on 2 CPU cores in about a minute, same code paths as the record.

    The 50304-way head dominates the cost on CPU, so the batches are small: 4 x 256 tokens per step."""
    model = dataclasses.replace(
        base.model,
        num_layers=4,
        model_dim=128,
        num_heads=2,
        head_dim=64,
        layers_without_attention=(),
        long_window_layers=(0, 3),
        skip_connections=unet_skips(4),
        value_embed_count=2,
    )
    return dataclasses.replace(
        base,
        preset="tiny",
        model=model,
        num_iterations=50,
        micro_batch_tokens=256,
        micro_steps_per_step=4,
        val_tokens=4 * 1024,
        val_micro_batch_tokens=1024,
        val_every=25,
        muon_momentum_warmup_steps=10,
        window_max=512,
        warmup_steps=2,
    )


CONFIGS: dict[tuple[str, str | None], TrainConfig] = {
    ("track_1_short", None): SMALL,
    ("track_2_medium", None): MEDIUM,
    ("track_1_short", "tiny"): _tiny(SMALL),
    ("track_2_medium", "tiny"): _tiny(MEDIUM),
}


def get_config(track: str, preset: str | None = None) -> TrainConfig:
    """The recipe of a track ('small', 'medium' or a full track name); preset None is the record recipe."""
    name = canonical_name(track)
    key = (name, preset or None)
    if key not in CONFIGS:
        names = ", ".join(repr(p) for p in sorted({p for t, p in CONFIGS if t == name and p}))
        raise BadInput(None, f"unknown preset {preset!r} for track {name}: use none or {names}")
    config = CONFIGS[key]
    config.model.validate()
    return config


@dataclass(frozen=True)
class TrainOptions:
    """How to execute one run: not part of the recipe (except the overrides, which are logged via the config)."""

    track: str = "small"
    preset: str | None = None
    device: Literal["auto", "cuda", "cpu"] = "auto"
    data_dir: Path = DEFAULT_DATA_DIR
    log_dir: Path = DEFAULT_LOG_DIR
    steps: int | None = None  # overrides num_iterations
    val_every: int | None = None
    seed: int | None = None
    compile: bool = True  # regional torch.compile of the blocks; CUDA only (CPU runs eagerly)
    run_id: str | None = None

    def resolve_config(self) -> TrainConfig:
        """The track's config with this run's overrides applied."""
        config = get_config(self.track, self.preset)
        changes: dict[str, Any] = {}
        if self.steps is not None:
            if self.steps < 1:
                raise BadInput(None, f"--steps must be at least 1, got {self.steps}")
            changes["num_iterations"] = self.steps
        if self.val_every is not None:
            if self.val_every < 0:
                raise BadInput(None, f"--val-every must be 0 (only at the end) or more, got {self.val_every}")
            changes["val_every"] = self.val_every
        if self.seed is not None:
            changes["seed"] = self.seed
        return config.replace(**changes) if changes else config
