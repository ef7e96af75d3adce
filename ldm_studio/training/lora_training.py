"""Train a LoRA for any model the app opens (SD 1.x, SD 2.x ε and v, SDXL, LDM Studio's own).

The base is opened with the engine's offline loader, frozen, and (optionally) kept in bf16/fp16;
adapters (``lora_network``) train in float32. Every random draw of step N comes from a generator
seeded by (seed, N), so the run folder's checkpoint (adapters, optimizer, step) is all a resumed
run needs to repeat an uninterrupted one exactly; under ``accelerate launch`` every process draws
the same global batch and takes its slice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldm_studio.training.checkpoint import learning_rate_at, load_checkpoint, save_checkpoint
from ldm_studio.training.config import OptimConfig, RunConfig, to_toml
from ldm_studio.training.lora_data import CaptionRules, build_cache, cache_signature, load_or_build_cache
from ldm_studio.training.lora_network import LoraNetwork, text_encoder_layers, unet_layers
from ldm_studio.training.lora_step import LoraTrainee, diffusion_loss, draw_batch
from ldm_studio.training.session import StepReporter, ThreadTuner, make_accelerator

log = logging.getLogger(__name__)

FAMILIES = ("sd1", "sd2", "sdxl", "ldm-studio")
ProgressCallback = Callable[[int, int, float, "np.ndarray | None"], None]


def _lora_run() -> RunConfig:
    return RunConfig(
        max_steps=1000,
        batch_size=1,
        mixed_precision="auto",
        log_every=10,
        sample_every=0,
        checkpoint_every=100,
    )


def _lora_optim() -> OptimConfig:
    return OptimConfig(
        learning_rate=1e-4,
        min_learning_rate=1e-5,
        warmup_steps=20,
        weight_decay=0.01,
        betas=(0.9, 0.999),
        grad_clip=1.0,
    )


@dataclass(frozen=True)
class LoraTrainingConfig:
    """One LoRA run. Paths may be given as strings (TOML); ``resolution`` 0 is the base's native size."""

    base: Path | None = None
    data: Path | None = None
    out: Path | None = None  # the .safetensors to write
    run_dir: Path | None = None  # checkpoint, cache, logs, samples; default: <out without suffix>-run
    rank: int = 8
    alpha: float = 4.0
    targets: str = "transformer"  # or "attention", "cross-attention", "locon" (see lora_network)
    text_encoder: bool = False
    text_encoder_lr_ratio: float = 0.5  # the text encoder's rate relative to the UNet's
    resolution: int = 0
    max_aspect: float = 2.0
    trigger: str = ""
    caption_dropout: float = 0.0
    shuffle_tags: bool = False
    keep_tags: int = 1
    min_snr_gamma: float = 0.0  # 0: plain MSE
    noise_offset: float = 0.0
    # kohya's --min_timestep / --max_timestep: train on t in [min, max) only (max 0: every timestep);
    # leaving out the noisiest steps keeps the base's composition, the usual way to train a style
    min_timestep: int = 0
    max_timestep: int = 0
    base_dtype: str = "float32"  # "bfloat16"/"float16" halve the frozen base's memory
    gradient_checkpointing: bool = False
    save_dtype: str = "float16"
    sample_prompts: tuple[str, ...] = ()  # default: the first training captions
    samples_per_prompt: int = 2
    sample_steps: int = 20
    sample_guidance: float = 7.0
    run: RunConfig = field(default_factory=_lora_run)
    optim: OptimConfig = field(default_factory=_lora_optim)

    def __post_init__(self) -> None:
        for name in ("base", "data", "out", "run_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value).expanduser())

    @property
    def run_folder(self) -> Path:
        if self.run_dir is not None:
            return self.run_dir
        if self.out is None:
            raise ValueError("a LoRA run needs an output file (--out)")
        return self.out.with_name(self.out.stem + "-run")


@dataclass(frozen=True)
class LoraTrainingResult:
    out_file: Path | None  # None when cancelled (the checkpoint stays; resume continues)
    run_dir: Path
    steps_done: int
    total_steps: int
    cancelled: bool
    last_loss: float | None


def _open_base(config: LoraTrainingConfig, device: torch.device):  # noqa: ANN202
    from ldm_studio.engine.loader import load_model
    from ldm_studio.paths import user_dirs

    loaded = load_model(
        config.base, device="cpu", dtype=config.base_dtype, cache_dir=user_dirs().cache / "previews"
    )
    if loaded.family not in FAMILIES or getattr(loaded.pipe, "unet", None) is None:
        raise ValueError(
            f"LoRA training supports SD 1.x, SD 2.x, SDXL and LDM Studio models, not {loaded.family}"
        )
    pipe = loaded.pipe.to(device)
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        module = getattr(pipe, part, None)
        if module is not None:
            module.requires_grad_(False).eval()
    return loaded, pipe


def _check(config: LoraTrainingConfig, world: int) -> None:
    for name in ("base", "data", "out"):
        if getattr(config, name) is None:
            raise ValueError(f"a LoRA run needs --{name}")
    if config.out.suffix != ".safetensors":
        raise ValueError(f"the LoRA file must end in .safetensors, not {config.out.name}")
    if config.rank < 1 or config.alpha <= 0:
        raise ValueError("rank must be 1 or more and alpha above 0")
    if config.run.batch_size % world:
        raise ValueError(f"batch size {config.run.batch_size} does not split over {world} processes")


def train_lora(
    config: LoraTrainingConfig,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    resume: bool = False,
    stop_at_step: int | None = None,
) -> LoraTrainingResult:
    """Train, writing checkpoints and logs to the run folder and the LoRA file at the end.

    ``should_stop`` is asked before every step: a stopped run saves its checkpoint and returns
    ``cancelled``; ``resume=True`` continues it. ``stop_at_step`` stops the same way (for tests and
    ``--stop-after``) without changing the learning-rate schedule.
    """
    from diffusers import DDPMScheduler

    from ldm_studio.engine.precision import cpu_supports_bf16
    from ldm_studio.training.lora_export import save_kohya_lora

    run = config.run
    if run.mixed_precision == "auto":  # bf16 autocast only where the CPU has bf16 units
        wanted = "bf16" if torch.cuda.is_available() or cpu_supports_bf16() else "no"
        run = dataclasses.replace(run, mixed_precision=wanted)
    accelerator = make_accelerator(run)
    _check(config, accelerator.num_processes)
    run_dir = config.run_folder
    run_dir.mkdir(parents=True, exist_ok=True)
    state = load_checkpoint(run_dir) if resume else None
    if state is None and (run_dir / "checkpoint.pt").exists():
        raise FileExistsError(f"{run_dir} already holds a checkpoint: resume it, or pick a new output")
    loaded, pipe = _open_base(config, accelerator.device)
    family = loaded.family
    if config.text_encoder and family == "ldm-studio":
        raise ValueError(
            "this model's text encoder (a frozen MiniLM) cannot take a LoRA: train the UNet only"
        )
    resolution = config.resolution or loaded.native_size
    rules = CaptionRules(config.trigger, config.shuffle_tags, config.keep_tags)
    cache_text = not config.text_encoder and not config.shuffle_tags
    unet_factor = 2 ** (len(pipe.unet.config.block_out_channels) - 1)
    signature = cache_signature(
        data=config.data.resolve(),
        base=config.base.resolve(),
        resolution=resolution,
        aspect=config.max_aspect,
        rules=rules,
        text=cache_text,
        dtype=config.base_dtype,
    )

    def build() -> dict:
        return build_cache(
            pipe, family, config.data, resolution, config.max_aspect, rules, cache_text, unet_factor
        )

    if accelerator.is_main_process:
        (run_dir / "lora_config.toml").write_text(to_toml(dataclasses.replace(config, run=run)))
        cache = load_or_build_cache(run_dir, signature, build)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        cache = load_or_build_cache(run_dir, signature, build)

    torch.manual_seed(run.seed)  # the adapters' initial down weights
    layers = unet_layers(pipe.unet, config.targets)
    if config.text_encoder:
        encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if family == "sdxl" else [])
        prefixes = ["lora_te1", "lora_te2"] if family == "sdxl" else ["lora_te"]
        for encoder, prefix in zip(encoders, prefixes, strict=True):
            layers += text_encoder_layers(encoder, prefix)
    network = LoraNetwork(layers, config.rank, config.alpha).to(accelerator.device)
    network.attach()
    if config.gradient_checkpointing:
        pipe.unet.enable_gradient_checkpointing()
    trainee = LoraTrainee(pipe, family, network)
    unet_params = [p for name, p in network.named_parameters() if "lora_unet_" in name]
    text_params = [p for name, p in network.named_parameters() if "lora_unet_" not in name]
    groups = [{"params": unet_params, "lr_ratio": 1.0}]
    if text_params:
        groups.append({"params": text_params, "lr_ratio": config.text_encoder_lr_ratio})
    optim = config.optim
    optimizer = torch.optim.AdamW(
        groups, lr=optim.learning_rate, betas=optim.betas, weight_decay=optim.weight_decay
    )
    start_step = 0
    if state is not None:
        network.load_state_dict(state["adapters"])
        optimizer.load_state_dict(state["optimizer"])
        start_step = int(state["step"])
    trainee, optimizer = accelerator.prepare(trainee, optimizer)

    scheduler_config = loaded.base_scheduler_config
    alphas_cumprod = DDPMScheduler.from_config(scheduler_config).alphas_cumprod.to(accelerator.device)
    prediction_type = loaded.prediction_type
    rank, per_process = accelerator.process_index, run.batch_size // accelerator.num_processes
    mine = slice(rank * per_process, (rank + 1) * per_process)
    device = accelerator.device
    reporter = StepReporter(run_dir, "lora", run, start_step, accelerator.is_main_process)
    stop = min(run.max_steps, stop_at_step or run.max_steps)
    done, last_loss, cancelled = start_step, None, False

    def save_state() -> None:
        save_checkpoint(
            run_dir, {"adapters": network.state_dict(), "optimizer": optimizer.state_dict(), "step": done}
        )
        reporter.plot()

    tuner = ThreadTuner(os.cpu_count() or 1) if run.num_threads < 0 and device.type == "cpu" else None
    for step in range(start_step, stop):
        started = time.perf_counter()
        if should_stop is not None and should_stop():
            cancelled = True
            break
        draw = draw_batch(cache, config, rules, step, int(scheduler_config["num_train_timesteps"]))
        learning_rate = learning_rate_at(
            step, optim.learning_rate, optim.min_learning_rate, optim.warmup_steps, run.max_steps
        )
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * group["lr_ratio"]
        latents, noise = draw["latents"][mine].to(device), draw["noise"][mine].to(device)
        timesteps = draw["timesteps"][mine].to(device)
        alpha_bar = alphas_cumprod[timesteps].float()[:, None, None, None]
        noisy = alpha_bar.sqrt() * latents + (1 - alpha_bar).sqrt() * noise
        inputs: dict[str, Any] = {"time_ids": draw["time_ids"][mine].to(device)}
        if cache_text:
            ids = torch.tensor(draw["caption_ids"][mine], dtype=torch.long)
            inputs["states"] = cache["text_states"][ids].to(device)
            if cache["text_pooled"] is not None:
                inputs["pooled"] = cache["text_pooled"][ids].to(device)
        else:
            inputs["prompts"] = draw["captions"][mine]
        with accelerator.autocast():
            prediction = trainee(noisy.to(pipe.unet.dtype), timesteps, **inputs)
            loss = diffusion_loss(
                prediction, latents, noise, timesteps, alphas_cumprod, prediction_type, config.min_snr_gamma
            )
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if optim.grad_clip > 0:
            accelerator.clip_grad_norm_(network.parameters(), optim.grad_clip)
        optimizer.step()
        done, last_loss = step + 1, float(loss.detach())
        if tuner is not None:
            tuner.step_took(time.perf_counter() - started)
        reporter.step_done(done, last_loss, run.batch_size, learning_rate)
        if not accelerator.is_main_process:
            continue
        if done % run.checkpoint_every == 0 or done == stop:
            save_state()
        sample = None
        if run.sample_every and (done % run.sample_every == 0 or done == run.max_steps):
            from ldm_studio.training.lora_samples import save_sample_grid

            with accelerator.autocast():
                sample = save_sample_grid(
                    pipe,
                    network,
                    cache,
                    config,
                    rules,
                    resolution,
                    run_dir / "samples" / f"lora_{done:06d}.png",
                )
        if on_progress is not None:
            on_progress(done, run.max_steps, last_loss, sample)
    if cancelled and accelerator.is_main_process:
        save_state()
    reporter.close()
    out_file = None
    if done == run.max_steps and accelerator.is_main_process:
        metadata = run_metadata(config, family, prediction_type, resolution, cache, done, per_process)
        out_file = save_kohya_lora(
            config.out, network.kohya_state_dict(getattr(torch, config.save_dtype)), metadata
        )
    accelerator.wait_for_everyone()
    network.detach()
    return LoraTrainingResult(out_file, run_dir, done, run.max_steps, cancelled, last_loss)


def run_metadata(
    config: LoraTrainingConfig,
    family: str,
    prediction_type: str,
    resolution: int,
    cache: dict,
    steps: int,
    per_process: int,
) -> dict[str, str]:
    from ldm_studio.training.lora_export import kohya_metadata

    extra = {
        "ss_bucket_info": json.dumps({"buckets": [list(size) for size in sorted(cache["bucket_sizes"])]}),
        "ss_seed": config.run.seed,
        "ss_noise_offset": config.noise_offset,
        "ss_min_timestep": config.min_timestep,
        "ss_max_timestep": config.max_timestep,
        "ss_min_snr_gamma": config.min_snr_gamma,
        "ss_caption_dropout_rate": config.caption_dropout,
        "ss_shuffle_caption": config.shuffle_tags,
        "ss_keep_tokens": config.keep_tags,
        "ss_batch_size_per_device": per_process,
        "ss_gradient_checkpointing": config.gradient_checkpointing,
    }
    if config.targets == "locon":  # kohya's LoCon: the 3x3 convolutions' own rank and alpha
        conv = {"conv_dim": str(config.rank), "conv_alpha": f"{config.alpha:g}"}
        extra["ss_network_args"] = json.dumps(conv)
    return kohya_metadata(
        family=family,
        prediction_type=prediction_type,
        base_path=config.base,
        output_name=config.out.stem,
        rank=config.rank,
        alpha=config.alpha,
        resolution=(resolution, resolution),
        dataset_name=config.data.name,
        tag_frequency=cache["tag_frequency"],
        num_images=len(cache["image_files"]),
        steps=steps,
        learning_rate=config.optim.learning_rate,
        text_encoder_trained=config.text_encoder,
        trigger=config.trigger,
        extra=extra,
    )
