"""The diffusion pieces of LDM training: UNet and scheduler construction, the loss, EMA, sampling."""

from __future__ import annotations

import torch
from torch import nn

from ldm_studio.training.config import LdmConfig


def build_unet(config: LdmConfig, latent_size: int, latent_channels: int, text_dim: int):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=latent_size,
        in_channels=latent_channels,
        out_channels=latent_channels,
        block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block,
        down_block_types=config.down_block_types,
        up_block_types=config.up_block_types,
        cross_attention_dim=text_dim,
        attention_head_dim=config.attention_head_dim,
        norm_num_groups=32,
    )


def scheduler_settings(config: LdmConfig) -> dict:
    """Every DDPMScheduler setting, written out: a key left unset is filled by each sampler class's own
    default when the app swaps samplers with ``from_config``, which changes the images."""
    return {
        "num_train_timesteps": config.num_train_timesteps,
        "beta_start": 0.0001,  # unused by the cosine schedule, explicit all the same
        "beta_end": 0.02,
        "beta_schedule": config.beta_schedule,
        "trained_betas": None,
        "variance_type": "fixed_small",
        "clip_sample": False,  # normalised latents are not bounded by 1
        "clip_sample_range": 1.0,
        "prediction_type": config.prediction_type,
        "thresholding": False,
        "dynamic_thresholding_ratio": 0.995,
        "sample_max_value": 1.0,
        "timestep_spacing": "trailing",  # few-step samplers then start from the noisiest timestep
        # Unused with "trailing" spacing; 1 because StableDiffusionPipeline rewrites any other value.
        "steps_offset": 1,
        "rescale_betas_zero_snr": False,
    }


def build_scheduler(config: LdmConfig):
    from diffusers import DDPMScheduler

    return DDPMScheduler(**scheduler_settings(config))


def v_loss(
    unet: nn.Module,
    latents: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    text_states: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    min_snr_gamma: float,
) -> torch.Tensor:
    """v-prediction MSE with min-SNR-γ weighting (Hang et al. 2023).

    For v-prediction the per-timestep weight is min(SNR, γ) / (SNR + 1).
    """
    alpha_bar = alphas_cumprod[timesteps].float()[:, None, None, None]
    signal, sigma = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    noisy = signal * latents + sigma * noise
    target = signal * noise - sigma * latents
    prediction = unet(noisy, timesteps, text_states).sample.float()
    per_sample = ((prediction - target) ** 2).mean(dim=(1, 2, 3))
    snr = (alpha_bar / (1 - alpha_bar)).flatten()
    weight = snr.clamp(max=min_snr_gamma) / (snr + 1) if min_snr_gamma > 0 else torch.ones_like(snr)
    return (weight * per_sample).mean()


class EmaWeights:
    """An exponential moving average of a model's parameters, kept in float32."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {name: p.detach().float().clone() for name, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        # A short warm-up so early averages are not dominated by the random initialisation.
        decay = min(self.decay, (1 + step) / (10 + step))
        for name, parameter in model.named_parameters():
            self.shadow[name].lerp_(parameter.detach().float(), 1 - decay)

    @torch.no_grad()
    def copy_into(self, model: nn.Module) -> nn.Module:
        for name, parameter in model.named_parameters():
            parameter.copy_(self.shadow[name])
        return model.eval()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow = {name: tensor.float().clone() for name, tensor in state.items()}


@torch.no_grad()
def sample_latents(
    unet: nn.Module,
    scheduler_config: dict,
    conditional: torch.Tensor,
    unconditional: torch.Tensor,
    shape: tuple[int, ...],
    steps: int,
    guidance: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """DPM-Solver++ with classifier-free guidance, the way the pipeline samples."""
    from diffusers import DPMSolverMultistepScheduler

    scheduler = DPMSolverMultistepScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(steps)
    latents = torch.randn(shape, generator=generator) * scheduler.init_noise_sigma
    states = torch.cat([unconditional, conditional])
    for timestep in scheduler.timesteps:
        model_input = scheduler.scale_model_input(torch.cat([latents, latents]), timestep)
        uncond, cond = unet(model_input, timestep, states).sample.float().chunk(2)
        latents = scheduler.step(uncond + guidance * (cond - uncond), timestep, latents).prev_sample
    return latents
