"""Train the autoencoder (diffusers ``AutoencoderKL``): reconstruction (MSE + L1) + a small KL term."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ldm_studio.training.checkpoint import (
    learning_rate_at,
    load_checkpoint,
    save_checkpoint,
    set_learning_rate,
    step_generator,
)
from ldm_studio.training.config import VaeConfig, to_toml
from ldm_studio.training.image_folder import load_images, read_captioned_folder, split_holdout
from ldm_studio.training.run_log import image_grid, to_uint8
from ldm_studio.training.session import StepReporter, ThreadTuner, make_accelerator


def build_vae(config: VaeConfig):  # -> diffusers.AutoencoderKL
    from diffusers import AutoencoderKL

    levels = len(config.block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block,
        latent_channels=config.latent_channels,
        norm_num_groups=32,
        sample_size=config.resolution,
        scaling_factor=1.0,
        mid_block_add_attention=config.mid_block_attention,
    )


class VaeWithLoss(nn.Module):
    """One module whose forward gives the loss terms, so DDP sees a single forward call."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, images: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = self.vae.encode(images).latent_dist
        latents = posterior.mean + posterior.std * noise
        reconstruction = self.vae.decode(latents).sample
        return reconstruction, posterior.kl().mean()


def to_model_input(batch: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float N x 3 x H x W in [-1, 1]."""
    tensor = torch.as_tensor(batch).permute(0, 3, 1, 2).float()
    return tensor / 127.5 - 1.0


@torch.no_grad()
def reconstruct(vae: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Decode the posterior mean of each image (the deterministic reconstruction)."""
    vae.eval()
    outputs = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        outputs.append(vae.decode(vae.encode(chunk).latent_dist.mean).sample.float().clamp(-1, 1))
    return torch.cat(outputs)


def psnr(reference: torch.Tensor, reconstruction: torch.Tensor) -> dict[str, float]:
    """PSNR in dB for images in [-1, 1], measured on 8-bit values: of the pooled MSE and per image."""
    ref = ((reference.clamp(-1, 1) + 1) * 127.5).round()
    rec = ((reconstruction.clamp(-1, 1) + 1) * 127.5).round()
    per_image = ((ref - rec) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    pooled = per_image.mean()
    return {
        "psnr_db": float(10 * torch.log10(255.0**2 / pooled)),
        "psnr_mean_per_image_db": float((10 * torch.log10(255.0**2 / per_image)).mean()),
        "images": len(reference),
    }


def evaluate_vae(vae: nn.Module, held_out: torch.Tensor) -> dict[str, float]:
    return psnr(held_out, reconstruct(vae, held_out))


def save_reconstruction_grid(vae: nn.Module, held_out: torch.Tensor, path: Path, count: int = 16) -> None:
    originals = held_out[:count]
    rebuilt = reconstruct(vae, originals)
    tiles = list(to_uint8(originals.numpy())) + list(to_uint8(rebuilt.numpy()))
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(tiles, columns=len(originals), scale=3).save(path)


def train_vae(
    data_dir: Path, out_dir: Path, config: VaeConfig, resume: bool = False, stop_at_step: int | None = None
) -> dict[str, float]:
    """Train, checkpointing into ``out_dir``; writes ``out_dir/vae`` and returns the held-out metrics.

    ``stop_at_step`` ends the run early with a checkpoint (as an interruption would), for ``--resume``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = config.run
    accelerator = make_accelerator(run)
    torch.manual_seed(run.seed)  # weight initialisation
    vae = build_vae(config)
    optimizer = torch.optim.AdamW(
        vae.parameters(),
        lr=config.optim.learning_rate,
        betas=config.optim.betas,
        weight_decay=config.optim.weight_decay,
    )
    start_step = 0
    state = load_checkpoint(out_dir) if resume else None
    if state is not None:
        vae.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_step = int(state["step"])
    elif (out_dir / "checkpoint.pt").exists():
        raise FileExistsError(f"{out_dir} already holds a checkpoint: pass --resume, or pick a new --out")
    (out_dir / "vae_config.toml").write_text(to_toml(config))

    items = read_captioned_folder(data_dir)
    train_items, held_items = split_holdout(items, data_dir, config.holdout_fraction)
    train_images = torch.from_numpy(load_images(train_items, config.resolution))
    held_out = to_model_input(load_images(held_items, config.resolution)) if held_items else None

    wrapped, optimizer = accelerator.prepare(VaeWithLoss(vae), optimizer)
    rank, world = accelerator.process_index, accelerator.num_processes
    per_process = run.batch_size // world
    latent_size = config.resolution // 2 ** (len(config.block_out_channels) - 1)
    reporter = StepReporter(out_dir, "vae", run, start_step, accelerator.is_main_process)
    on_cpu = accelerator.device.type == "cpu"
    tuner = ThreadTuner(os.cpu_count() or 1) if run.num_threads < 0 and on_cpu else None
    stop = min(run.max_steps, stop_at_step or run.max_steps)
    for step in range(start_step, stop):
        started = time.perf_counter()
        generator = step_generator(run.seed, step)
        indices = torch.randperm(len(train_images), generator=generator)[: run.batch_size]
        flips = torch.rand(run.batch_size, generator=generator) < (0.5 if config.horizontal_flip else 0.0)
        noise = torch.randn(
            run.batch_size, config.latent_channels, latent_size, latent_size, generator=generator
        )
        mine = slice(rank * per_process, (rank + 1) * per_process)
        images = to_model_input(train_images[indices[mine]])
        images = torch.where(flips[mine, None, None, None], images.flip(-1), images)
        images, noise = images.to(accelerator.device), noise[mine].to(accelerator.device)
        learning_rate = learning_rate_at(
            step,
            config.optim.learning_rate,
            config.optim.min_learning_rate,
            config.optim.warmup_steps,
            run.max_steps,
        )
        set_learning_rate(optimizer, learning_rate)
        wrapped.train()
        with accelerator.autocast():
            reconstruction, kl = wrapped(images, noise)
        reconstruction = reconstruction.float()
        loss = (
            nn.functional.mse_loss(reconstruction, images)
            + config.l1_weight * nn.functional.l1_loss(reconstruction, images)
            + config.kl_weight * kl.float()
        )
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if config.optim.grad_clip > 0:
            accelerator.clip_grad_norm_(wrapped.parameters(), config.optim.grad_clip)
        optimizer.step()
        if tuner is not None:
            tuner.step_took(time.perf_counter() - started)
        done = step + 1
        reporter.step_done(done, float(loss.detach()), run.batch_size, learning_rate)
        if accelerator.is_main_process:
            bare = accelerator.unwrap_model(wrapped).vae
            if held_out is not None and (done % run.sample_every == 0 or done == run.max_steps):
                with accelerator.autocast():
                    save_reconstruction_grid(bare, held_out, out_dir / "samples" / f"vae_{done:06d}.png")
            if done % run.checkpoint_every == 0 or done == stop:
                save_checkpoint(
                    out_dir, {"model": bare.state_dict(), "optimizer": optimizer.state_dict(), "step": done}
                )
                reporter.plot()
    reporter.close()
    accelerator.wait_for_everyone()
    metrics: dict[str, float] = {"steps": stop}
    if accelerator.is_main_process and stop == run.max_steps:
        bare = accelerator.unwrap_model(wrapped).vae
        bare.save_pretrained(out_dir / "vae")
        if held_out is not None:
            metrics.update(evaluate_vae(bare, held_out))  # fp32: the metric of the exported weights
        (out_dir / "vae_metrics.json").write_text(json.dumps(metrics, indent=2))
        reporter.plot()
    return metrics
