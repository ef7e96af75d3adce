"""Train the text-conditioned latent denoiser (diffusers ``UNet2DConditionModel``).

Latents (posterior mean and std of every image) and the caption token states are computed once and
cached in the run folder; each step draws a latent sample, a caption (or "" for classifier-free
guidance), a timestep and noise from a generator seeded by (seed, step), so a resumed run repeats
an uninterrupted one exactly.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch

from ldm_studio.training.checkpoint import (
    learning_rate_at,
    load_checkpoint,
    save_checkpoint,
    set_learning_rate,
    step_generator,
)
from ldm_studio.training.config import LdmConfig, to_toml
from ldm_studio.training.diffusion import EmaWeights, build_scheduler, build_unet, sample_latents, v_loss
from ldm_studio.training.image_folder import load_images, read_captioned_folder
from ldm_studio.training.run_log import image_grid, to_uint8
from ldm_studio.training.session import StepReporter, ThreadTuner, make_accelerator
from ldm_studio.training.vae_training import to_model_input

log = logging.getLogger(__name__)

CACHE_NAME = "cache.pt"
RUN_INFO_NAME = "ldm_run.json"


@torch.no_grad()
def encode_latents(vae, images: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of each image (float32)."""
    means, stds = [], []
    for start in range(0, len(images), batch_size):
        posterior = vae.encode(images[start : start + batch_size]).latent_dist
        means.append(posterior.mean.float())
        stds.append(posterior.std.float())
    return torch.cat(means), torch.cat(stds)


def build_cache(data_dir: Path, vae_dir: Path, config: LdmConfig) -> dict:
    """Everything training needs from the data: latents, per-channel stats, captions and their states."""
    from diffusers import AutoencoderKL

    from ldm_studio.training.text import encode_texts, load_text_encoder, load_tokenizer

    vae = AutoencoderKL.from_pretrained(vae_dir, local_files_only=True).eval()
    resolution = int(vae.config.sample_size)
    items = read_captioned_folder(data_dir)
    images = to_model_input(load_images(items, resolution))
    latent_mean, latent_std = encode_latents(vae, images)
    # Statistics of sampled latents: the posterior variance adds to the spread of the means.
    channel_mean = latent_mean.mean(dim=(0, 2, 3))
    channel_var = latent_mean.var(dim=(0, 2, 3)) + (latent_std**2).mean(dim=(0, 2, 3))
    captions = sorted({caption for item in items for caption in item.captions})
    caption_index = {caption: index + 1 for index, caption in enumerate(captions)}  # 0 is ""
    tokenizer = load_tokenizer(config.text_max_length)
    encoder = load_text_encoder()
    states = encode_texts(tokenizer, encoder, ["", *captions]).to(torch.bfloat16)
    sample_states = encode_texts(tokenizer, encoder, ["", *config.sample_prompts])
    return {
        "latent_mean": latent_mean,
        "latent_std": latent_std,
        "channel_mean": channel_mean,
        "channel_std": channel_var.sqrt(),
        "captions": captions,
        "caption_states": states,
        "image_captions": [[caption_index[c] for c in item.captions] or [0] for item in items],
        "image_files": [str(item.path.relative_to(data_dir)) for item in items],
        "sample_states": sample_states,
    }


def load_or_build_cache(run_dir: Path, data_dir: Path, vae_dir: Path, config: LdmConfig) -> dict:
    path = run_dir / CACHE_NAME
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    cache = build_cache(data_dir, vae_dir, config)
    torch.save(cache, path)
    return cache


def caption_table(image_captions: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged caption ids as a padded table plus counts, so a batch can draw one caption per image."""
    counts = torch.tensor([len(ids) for ids in image_captions])
    table = torch.zeros(len(image_captions), int(counts.max()), dtype=torch.long)
    for row, ids in enumerate(image_captions):
        table[row, : len(ids)] = torch.tensor(ids)
    return table, counts


def save_sample_grid(unet, scheduler_config: dict, cache: dict, config: LdmConfig, path: Path) -> None:
    """Each sample prompt in a row, four seeds per row, decoded with the run's autoencoder."""
    per_prompt = 4
    states = cache["sample_states"]
    prompts = len(config.sample_prompts)
    conditional = states[1:].repeat_interleave(per_prompt, dim=0)
    unconditional = states[:1].expand_as(conditional)
    generator = torch.Generator().manual_seed(1234)
    shape = (prompts * per_prompt, *cache["latent_mean"].shape[1:])
    latents = sample_latents(
        unet,
        scheduler_config,
        conditional,
        unconditional,
        shape,
        config.sample_steps,
        config.sample_guidance,
        generator,
    )
    images = decode_normalised(cache["vae"], latents, cache["channel_mean"], cache["channel_std"])
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(list(to_uint8(images.numpy())), columns=per_prompt * 2, scale=2).save(path)


@torch.no_grad()
def decode_normalised(vae, latents: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    raw = latents * std[None, :, None, None] + mean[None, :, None, None]
    return vae.decode(raw.float()).sample.float().clamp(-1, 1)


def train_ldm(
    data_dir: Path,
    vae_dir: Path,
    out_dir: Path,
    config: LdmConfig,
    resume: bool = False,
    export_to: Path | None = None,
    stop_at_step: int | None = None,
) -> None:
    """Train into ``out_dir`` (checkpoint, logs, samples, ``unet_ema/``); export a model folder if asked.

    ``stop_at_step`` ends the run early with a checkpoint (as an interruption would), for ``--resume``,
    and with an export when ``export_to`` is given: the learning-rate schedule stays the configured
    one, so a model exported at step N of a longer run is reproduced by stopping there.
    """
    from diffusers import AutoencoderKL

    from ldm_studio.training.export import export_run

    data_dir, vae_dir, out_dir = Path(data_dir), Path(vae_dir), Path(out_dir)
    if (vae_dir / "vae" / "config.json").is_file():  # the run folder of `train vae` was given
        vae_dir = vae_dir / "vae"
    if not (vae_dir / "config.json").is_file():
        raise FileNotFoundError(f"{vae_dir} holds no trained autoencoder (run `ldm-studio train vae` first)")
    out_dir.mkdir(parents=True, exist_ok=True)
    run = config.run
    accelerator = make_accelerator(run)
    state = load_checkpoint(out_dir) if resume else None
    if state is None and (out_dir / "checkpoint.pt").exists():
        raise FileExistsError(f"{out_dir} already holds a checkpoint: pass --resume, or pick a new --out")
    run_vae_dir = out_dir / "vae"
    if not (run_vae_dir / "config.json").is_file():
        AutoencoderKL.from_pretrained(vae_dir, local_files_only=True).save_pretrained(run_vae_dir)
    (out_dir / "ldm_config.toml").write_text(to_toml(config))
    for name in ("vae_config.toml", "vae_metrics.json"):
        source = vae_dir.parent / name
        if source.is_file():
            (out_dir / name).write_bytes(source.read_bytes())
    cache = (
        load_or_build_cache(out_dir, data_dir, run_vae_dir, config) if accelerator.is_main_process else None
    )
    accelerator.wait_for_everyone()
    if cache is None:
        cache = torch.load(out_dir / CACHE_NAME, map_location="cpu", weights_only=True)
    cache["vae"] = AutoencoderKL.from_pretrained(run_vae_dir, local_files_only=True).eval()
    (out_dir / RUN_INFO_NAME).write_text(
        json.dumps({"data": str(data_dir.resolve()), "text_max_length": config.text_max_length}, indent=2)
    )

    torch.manual_seed(run.seed)
    unet = build_unet(
        config,
        latent_size=cache["latent_mean"].shape[-1],
        latent_channels=cache["latent_mean"].shape[1],
        text_dim=cache["caption_states"].shape[-1],
    )
    scheduler = build_scheduler(config)
    ema = EmaWeights(unet, config.ema_decay)
    optimizer = torch.optim.AdamW(
        unet.parameters(),
        lr=config.optim.learning_rate,
        betas=config.optim.betas,
        weight_decay=config.optim.weight_decay,
    )
    start_step = 0
    if state is not None:
        unet.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        start_step = int(state["step"])
    unet, optimizer = accelerator.prepare(unet, optimizer)

    table, counts = caption_table(cache["image_captions"])
    mean, std = cache["channel_mean"], cache["channel_std"]
    latent_mean = (cache["latent_mean"] - mean[None, :, None, None]) / std[None, :, None, None]
    latent_std = cache["latent_std"] / std[None, :, None, None]
    states = cache["caption_states"]
    alphas_cumprod = scheduler.alphas_cumprod
    rank, world = accelerator.process_index, accelerator.num_processes
    per_process = run.batch_size // world
    device = accelerator.device
    reporter = StepReporter(out_dir, "ldm", run, start_step, accelerator.is_main_process)
    tuner = ThreadTuner(os.cpu_count() or 1) if run.num_threads < 0 and device.type == "cpu" else None
    stop = min(run.max_steps, stop_at_step or run.max_steps)
    for step in range(start_step, stop):
        started = time.perf_counter()
        generator = step_generator(run.seed, step)
        indices = torch.randperm(len(latent_mean), generator=generator)[: run.batch_size]
        choice = (torch.rand(run.batch_size, generator=generator) * counts[indices]).long()
        caption_ids = table[indices, choice]
        dropped = torch.rand(run.batch_size, generator=generator) < config.caption_dropout
        caption_ids = torch.where(dropped, torch.zeros_like(caption_ids), caption_ids)
        epsilon = torch.randn(latent_mean[indices].shape, generator=generator)
        noise = torch.randn(latent_mean[indices].shape, generator=generator)
        timesteps = torch.randint(0, config.num_train_timesteps, (run.batch_size,), generator=generator)
        mine = slice(rank * per_process, (rank + 1) * per_process)
        latents = latent_mean[indices[mine]] + latent_std[indices[mine]] * epsilon[mine]
        learning_rate = learning_rate_at(
            step,
            config.optim.learning_rate,
            config.optim.min_learning_rate,
            config.optim.warmup_steps,
            run.max_steps,
        )
        set_learning_rate(optimizer, learning_rate)
        unet.train()
        with accelerator.autocast():
            loss = v_loss(
                unet,
                latents.to(device),
                noise[mine].to(device),
                timesteps[mine].to(device),
                states[caption_ids[mine]].float().to(device),
                alphas_cumprod.to(device),
                config.min_snr_gamma,
            )
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if config.optim.grad_clip > 0:
            accelerator.clip_grad_norm_(unet.parameters(), config.optim.grad_clip)
        optimizer.step()
        bare = accelerator.unwrap_model(unet)
        ema.update(bare, step)
        if tuner is not None:
            tuner.step_took(time.perf_counter() - started)
        done = step + 1
        reporter.step_done(done, float(loss.detach()), run.batch_size, learning_rate)
        if not accelerator.is_main_process:
            continue
        last = done == stop
        if done % run.checkpoint_every == 0 or last:
            save_checkpoint(
                out_dir,
                {
                    "model": bare.state_dict(),
                    "ema": ema.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": done,
                },
            )
            reporter.plot()
        exporting = export_to is not None and (last or (run.export_every and done % run.export_every == 0))
        if done % run.sample_every == 0 or last or exporting:
            ema_unet = ema.copy_into(build_unet_like(bare))
            with accelerator.autocast():
                save_sample_grid(
                    ema_unet,
                    dict(scheduler.config),
                    cache,
                    config,
                    out_dir / "samples" / f"ldm_{done:06d}.png",
                )
            ema_unet.save_pretrained(out_dir / "unet_ema")
            (out_dir / "unet_ema" / "step.txt").write_text(str(done))
        if exporting and not last:
            try:
                export_run(out_dir, export_to)
            except Exception as error:  # an intermediate export must not end hours of training
                log.warning("export at step %d failed, training goes on: %s", done, error)
                reporter.bar.write(f"export at step {done} failed: {error}")
        elif exporting:
            export_run(out_dir, export_to)
    reporter.close()
    accelerator.wait_for_everyone()


def build_unet_like(unet):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_config(unet.config)
