"""Tiny training configs for tests: 16 px images, a few steps, one thread, fp32."""

from __future__ import annotations

from ldm_studio.training.config import LdmConfig, OptimConfig, RunConfig, VaeConfig


def tiny_run(max_steps: int, batch_size: int = 8) -> RunConfig:
    return RunConfig(
        seed=3,
        max_steps=max_steps,
        batch_size=batch_size,
        mixed_precision="no",
        num_threads=1,
        log_every=1,
        sample_every=1000,
        checkpoint_every=1000,
        export_every=0,
    )


def tiny_vae_config(max_steps: int) -> VaeConfig:
    return VaeConfig(
        resolution=16,
        block_out_channels=(32, 32),
        latent_channels=4,
        holdout_fraction=0.25,
        run=tiny_run(max_steps),
        optim=OptimConfig(learning_rate=2e-3, warmup_steps=2),
    )


def tiny_ldm_config(max_steps: int) -> LdmConfig:
    return LdmConfig(
        block_out_channels=(32, 64),
        attention_head_dim=4,
        text_max_length=8,
        sample_prompts=("red circle", "blue square"),
        sample_steps=2,
        run=tiny_run(max_steps),
        optim=OptimConfig(learning_rate=1e-3, warmup_steps=2),
    )
