"""One LoRA training step's pieces: the random draw of step N, the model call DDP wraps, the loss."""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import nn

from ldm_studio.training.checkpoint import step_generator
from ldm_studio.training.lora_data import CaptionRules, encode_prompts
from ldm_studio.training.lora_network import LoraNetwork


class LoraTrainee(nn.Module):
    """What DDP wraps: frozen base models plus the adapters; ``forward`` is the UNet's prediction."""

    def __init__(self, pipe: Any, family: str, network: LoraNetwork) -> None:
        super().__init__()
        self.network = network
        self.unet = pipe.unet
        self.pipe = [pipe]  # a list: not a submodule
        self.family = family

    def forward(self, noisy, timesteps, states=None, pooled=None, prompts=None, time_ids=None):  # noqa: ANN001, ANN201
        if prompts is not None:  # the text encoder trains (or captions change): encode in the step
            states, pooled = encode_prompts(self.pipe[0], self.family, prompts)
        extra = {}
        if self.family == "sdxl":
            extra["added_cond_kwargs"] = {"text_embeds": pooled.to(noisy.dtype), "time_ids": time_ids}
        return self.unet(noisy, timesteps, states.to(self.unet.dtype), **extra).sample.float()


def diffusion_loss(prediction, latents, noise, timesteps, alphas_cumprod, prediction_type: str, gamma: float):  # noqa: ANN001, ANN201
    """MSE against ε or v, optionally min-SNR-γ weighted (Hang et al. 2023)."""
    alpha_bar = alphas_cumprod[timesteps].float()[:, None, None, None]
    signal, sigma = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    target = signal * noise - sigma * latents if prediction_type == "v_prediction" else noise
    per_sample = ((prediction - target) ** 2).mean(dim=(1, 2, 3))
    if gamma <= 0:
        return per_sample.mean()
    snr = (alpha_bar / (1 - alpha_bar)).flatten()
    weight = snr.clamp(max=gamma) / (snr + 1 if prediction_type == "v_prediction" else snr)
    return (weight * per_sample).mean()


def timestep_range(config: Any, timesteps_total: int) -> tuple[int, int]:
    """[low, high) of the timesteps trained on (kohya's min_timestep / max_timestep; 0 = no bound)."""
    high = min(config.max_timestep or timesteps_total, timesteps_total)
    low = max(0, config.min_timestep)
    if low >= high:
        raise ValueError(
            f"min_timestep {config.min_timestep} must be below max_timestep {high} (of {timesteps_total})"
        )
    return low, high


def draw_batch(
    cache: dict, config: Any, rules: CaptionRules, step: int, timesteps_total: int
) -> dict[str, Any]:
    """Everything random about step ``step`` (the global batch), from (seed, step) alone."""
    batch = config.run.batch_size
    generator = step_generator(config.run.seed, step)
    counts = torch.tensor([len(members) for members in cache["bucket_members"]], dtype=torch.float)
    bucket = int(torch.multinomial(counts, 1, generator=generator))
    members = torch.tensor(cache["bucket_members"][bucket])
    if len(members) >= batch:
        chosen = members[torch.randperm(len(members), generator=generator)[:batch]]
    else:
        chosen = members[torch.randint(len(members), (batch,), generator=generator)]
    pick = torch.rand(batch, generator=generator)
    dropped = (torch.rand(batch, generator=generator) < config.caption_dropout).tolist()
    mean = torch.stack([cache["latent_mean"][i] for i in chosen.tolist()])
    std = torch.stack([cache["latent_std"][i] for i in chosen.tolist()])
    latents = mean + std * torch.randn(mean.shape, generator=generator)
    noise = torch.randn(mean.shape, generator=generator)
    if config.noise_offset:
        noise = noise + config.noise_offset * torch.randn((batch, mean.shape[1], 1, 1), generator=generator)
    timesteps = torch.randint(*timestep_range(config, timesteps_total), (batch,), generator=generator)
    rng = random.Random(config.run.seed * 1_000_003 + step)
    captions, caption_ids = [], []
    for row, index in enumerate(chosen.tolist()):
        options = cache["captions"][index]
        choice = min(int(pick[row] * len(options)), len(options) - 1)
        captions.append("" if dropped[row] else rules.apply(options[choice], rng))
        if "caption_ids" in cache:
            caption_ids.append(0 if dropped[row] else cache["caption_ids"][index][choice])
    width, height = cache["bucket_sizes"][bucket]
    time_ids = [
        [*cache["original_sizes"][i], *cache["crop_top_left"][i], height, width] for i in chosen.tolist()
    ]
    return {
        "latents": latents,
        "noise": noise,
        "timesteps": timesteps,
        "captions": captions,
        "caption_ids": caption_ids,
        "time_ids": torch.tensor(time_ids, dtype=torch.float),
    }
