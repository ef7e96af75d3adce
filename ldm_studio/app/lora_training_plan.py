"""What "Train a LoRA…" asks for, as plain values: the choice, its defaults, where it writes, refusals.

Nothing here imports torch, so the dialog can use it freely; ``to_config`` turns a choice into the
trainer's ``LoraTrainingConfig`` (and imports the trainer) only when a run starts.

Files: the LoRA goes to the data dir's ``loras/`` folder (the LoRA picker's own folder); the run folder
(checkpoint, latent cache, loss log, sample grids) goes to ``lora-runs/<name>/`` beside it, never
inside ``loras/``: the picker scans that folder recursively and would list ``checkpoint.pt`` as a LoRA.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldm_studio.app.backend import ModelSummary
from ldm_studio.app.draft import Draft
from ldm_studio.engine.catalog import LORA
from ldm_studio.paths import UserDirs

TRAINABLE_FAMILIES = ("sd1", "sd2", "sdxl", "ldm-studio")  # as training.lora_training.FAMILIES
RUNS_FOLDER = "lora-runs"
CHECKPOINT_FILE = "checkpoint.pt"  # training.checkpoint.CHECKPOINT_NAME
CONFIG_FILE = "lora_config.toml"  # what train_lora writes into the run folder
FAMILY_NAMES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL", "ldm-studio": "LDM Studio"}


@dataclass(frozen=True)
class LoraTrainingChoice:
    """The dialog's fields. Defaults are the trainer's (``LoraTrainingConfig``), except ``sample_every``:
    the window shows sample images as they come, the command line makes none unless asked."""

    data: Path
    name: str
    steps: int = 1000
    rank: int = 8
    learning_rate: float = 1e-4
    trigger: str = ""
    resolution: int = 0  # 0: the base model's native size
    alpha: float = 4.0
    batch: int = 1
    text_encoder: bool = False
    caption_dropout: float = 0.0
    shuffle_tags: bool = False
    keep_tags: int = 1
    sample_every: int = 100  # 0: no samples
    seed: int = 0


@dataclass(frozen=True)
class StoppedRun:
    """A run folder with a checkpoint and no finished LoRA: what "Resume" continues."""

    name: str
    run_dir: Path
    step: int  # the last logged step (the checkpoint is at most a few steps behind a crash)
    total: int
    choice: LoraTrainingChoice  # the settings it was started with (a resumed run keeps them)


def base_refusal(model: ModelSummary | None) -> str:
    """Why the loaded model cannot be a LoRA's base, in a sentence; "" when it can."""
    if model is None:
        return "Load a model first: a LoRA is trained for the model that is loaded now."
    if model.family not in TRAINABLE_FAMILIES:
        return (
            f"{model.name} is not a model a LoRA can be trained for (SD 1.x, SD 2.x, SDXL or an "
            "LDM Studio model): load one of those first."
        )
    return ""


def suggested_choice(data: Path, name: str, model: ModelSummary | None) -> LoraTrainingChoice:
    """The defaults for ``model``. LDM Studio's own models are tiny (32 px): a step costs little, so
    bigger batches and a higher rate, as the OpenMoji recipe (resources/training) uses."""
    choice = LoraTrainingChoice(data=data, name=name)
    if model is not None and model.family == "ldm-studio":
        choice = dataclasses.replace(
            choice, steps=300, rank=16, alpha=16.0, learning_rate=1e-3, batch=16, sample_every=50
        )
    return choice


def lora_file(name: str, dirs: UserDirs) -> Path:
    return LORA.default_folder(dirs) / f"{name}.safetensors"


def run_folder(name: str, dirs: UserDirs) -> Path:
    return dirs.data / RUNS_FOLDER / name


def name_problem(name: str) -> str:
    """Why ``name`` cannot name a LoRA file (it is what ``<lora:name:1>`` says), or ""."""
    if not name:
        return "Give the LoRA a name."
    if not re.fullmatch(r"[\w][\w.\- ]*", name) or name.endswith((".", " ")):
        return "Use letters, digits, spaces, '-', '_' or '.' in the name (no ':' or slashes)."
    return ""


def free_name(stem: str, dirs: UserDirs) -> str:
    """``stem``, or ``stem-2``, ``stem-3``…: the first with neither a LoRA file nor a run folder."""
    candidate, number = stem, 1
    while lora_file(candidate, dirs).exists() or run_folder(candidate, dirs).exists():
        number += 1
        candidate = f"{stem}-{number}"
    return candidate


def stopped_run(name: str, dirs: UserDirs) -> StoppedRun | None:
    """The paused or cancelled run of ``name``, if its checkpoint is there and the LoRA is not."""
    folder = run_folder(name, dirs)
    if not (folder / CHECKPOINT_FILE).is_file() or lora_file(name, dirs).exists():
        return None
    try:
        with (folder / CONFIG_FILE).open("rb") as handle:
            saved = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return None
    choice = choice_from_config(saved, name)
    history = loss_history(folder)
    return StoppedRun(name, folder, history[-1][0] if history else 0, choice.steps, choice)


def choice_from_config(saved: dict[str, Any], name: str) -> LoraTrainingChoice:
    """The dialog's fields from a run folder's ``lora_config.toml``."""
    run, optim = saved.get("run", {}), saved.get("optim", {})
    defaults = LoraTrainingChoice(Path(), name)
    return LoraTrainingChoice(
        data=Path(saved.get("data", "")),
        name=name,
        steps=int(run.get("max_steps", defaults.steps)),
        rank=int(saved.get("rank", defaults.rank)),
        learning_rate=float(optim.get("learning_rate", defaults.learning_rate)),
        trigger=str(saved.get("trigger", "")),
        resolution=int(saved.get("resolution", 0)),
        alpha=float(saved.get("alpha", defaults.alpha)),
        batch=int(run.get("batch_size", defaults.batch)),
        text_encoder=bool(saved.get("text_encoder", False)),
        caption_dropout=float(saved.get("caption_dropout", 0.0)),
        shuffle_tags=bool(saved.get("shuffle_tags", False)),
        keep_tags=int(saved.get("keep_tags", defaults.keep_tags)),
        sample_every=int(run.get("sample_every", 0)),
        seed=int(run.get("seed", 0)),
    )


def loss_history(run_dir: Path) -> list[tuple[int, float]]:
    """(step, loss) rows of the run's ``loss.csv`` (the trainer's log), [] when there is none."""
    try:
        with (run_dir / "loss.csv").open(newline="") as handle:
            return [(int(row["step"]), float(row["loss"])) for row in csv.DictReader(handle)]
    except (OSError, KeyError, ValueError):
        return []


def to_config(choice: LoraTrainingChoice, base: Path, dirs: UserDirs, *, threads: int = -1) -> Any:
    """The trainer's ``LoraTrainingConfig`` for ``choice`` (imports the trainer, and so torch).

    ``threads``: torch threads of the training thread; -1 lets the trainer's ThreadTuner pick 1 or
    all cores as the CPU allows, which is what a CPU shared with generation needs.
    """
    from ldm_studio.training.lora_training import LoraTrainingConfig

    defaults = LoraTrainingConfig()
    run = dataclasses.replace(
        defaults.run,
        seed=choice.seed,
        max_steps=choice.steps,
        batch_size=choice.batch,
        num_threads=threads,
        sample_every=choice.sample_every,
        checkpoint_every=max(1, min(defaults.run.checkpoint_every, choice.steps // 10 or 1)),
        log_every=max(1, min(defaults.run.log_every, choice.steps // 100 or 1)),
    )
    optim = dataclasses.replace(
        defaults.optim,
        learning_rate=choice.learning_rate,
        min_learning_rate=min(defaults.optim.min_learning_rate, choice.learning_rate / 10),
        warmup_steps=min(defaults.optim.warmup_steps, max(1, choice.steps // 10)),
    )
    return dataclasses.replace(
        defaults,
        base=base,
        data=choice.data,
        out=lora_file(choice.name, dirs),
        run_dir=run_folder(choice.name, dirs),
        rank=choice.rank,
        alpha=choice.alpha,
        text_encoder=choice.text_encoder,
        resolution=choice.resolution,
        trigger=choice.trigger.strip(),
        caption_dropout=choice.caption_dropout,
        shuffle_tags=choice.shuffle_tags,
        keep_tags=choice.keep_tags,
        run=run,
        optim=optim,
    )


def lora_tag(name: str, weight: float = 1.0) -> str:
    return f"<lora:{name}:{weight:g}>"


def with_lora_tag(draft: Draft, name: str, weight: float = 1.0) -> Draft:
    """The draft with ``<lora:name:weight>`` at the end of its prompt (once: a second try changes nothing)."""
    tag = lora_tag(name, weight)
    prompt = draft.request.prompt.rstrip()
    if tag in prompt:
        return draft
    prompt = f"{prompt}, {tag}" if prompt else tag
    return dataclasses.replace(draft, request=draft.request.replace(prompt=prompt))


def model_factors(model_path: Path, family: str) -> tuple[int, int]:
    """(VAE, UNet) downsampling factors, from a diffusers folder's configs; SD's 8 and 8 (SDXL's UNet: 4)
    for a single file, which is what the bucket step of a 512 px or larger model depends on."""
    factors = []
    for part, fallback in (("vae", 8), ("unet", 4 if family == "sdxl" else 8)):
        try:
            config = json.loads((Path(model_path) / part / "config.json").read_text(encoding="utf-8"))
            factors.append(2 ** (len(config["block_out_channels"]) - 1))
        except (OSError, KeyError, TypeError, ValueError):
            factors.append(fallback)
    return factors[0], factors[1]
