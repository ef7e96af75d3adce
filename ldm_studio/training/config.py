"""Training configs: TOML files (see ``resources/training/``) read into frozen dataclasses."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any


@dataclass(frozen=True)
class OptimConfig:
    learning_rate: float = 1e-3
    min_learning_rate: float = 1e-5
    warmup_steps: int = 200
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0


@dataclass(frozen=True)
class RunConfig:
    """What every run shares: length, batch, precision, logging cadence."""

    seed: int = 0
    max_steps: int = 10_000
    batch_size: int = 64
    mixed_precision: str = "bf16"  # "no", "bf16" or "fp16" (fp16 only on CUDA)
    num_threads: int = 0  # torch CPU threads; 0: torch's default; -1: adapt to a shared CPU
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 200
    export_every: int = 0  # 0: export only at the end (LDM runs)


@dataclass(frozen=True)
class VaeConfig:
    resolution: int = 32
    block_out_channels: tuple[int, ...] = (64, 128, 128)
    layers_per_block: int = 1
    latent_channels: int = 4
    mid_block_attention: bool = False
    kl_weight: float = 1e-6
    l1_weight: float = 0.5
    holdout_fraction: float = 0.05
    horizontal_flip: bool = True
    run: RunConfig = field(default_factory=RunConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass(frozen=True)
class LdmConfig:
    block_out_channels: tuple[int, ...] = (128, 256)
    layers_per_block: int = 1
    attention_head_dim: int = 8
    down_block_types: tuple[str, ...] = ("DownBlock2D", "CrossAttnDownBlock2D")
    up_block_types: tuple[str, ...] = ("CrossAttnUpBlock2D", "UpBlock2D")
    text_max_length: int = 32
    caption_dropout: float = 0.1
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "v_prediction"
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.999
    sample_prompts: tuple[str, ...] = ("red heart", "cat face", "pizza", "banana")
    sample_steps: int = 20
    sample_guidance: float = 4.0
    run: RunConfig = field(default_factory=RunConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


def from_dict(cls: type, values: dict[str, Any], base: Any = None) -> Any:
    """Build dataclass ``cls`` from a (TOML) dict, nested tables included; unknown keys are errors.

    Keys left out keep ``base``'s values (default: ``cls()``), nested tables those of the parent's
    own default, so a config whose defaults differ from ``RunConfig()`` keeps them.
    """
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} setting(s): {', '.join(sorted(unknown))}")
    base = cls() if base is None else base
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        default = getattr(base, name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = from_dict(type(default), value, default)
        elif isinstance(default, tuple):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return dataclasses.replace(base, **kwargs)


def load_config(cls: type, path: Path | None) -> Any:
    if path is None:
        return cls()
    with Path(path).open("rb") as handle:
        return from_dict(cls, tomllib.load(handle))


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def to_toml(config: Any) -> str:
    """The config as TOML (flat keys first, then one table per nested dataclass)."""

    def value_text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, PurePath)):
            value = str(value)
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(value_text(item) for item in value) + "]"
        return repr(value)

    values = to_dict(config)
    values = {key: value for key, value in values.items() if value is not None}  # TOML has no null
    lines = [f"{key} = {value_text(value)}" for key, value in values.items() if not isinstance(value, dict)]
    for key, value in values.items():
        if isinstance(value, dict):
            lines += ["", f"[{key}]"] + [f"{k} = {value_text(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"
