"""Tiny random-weight Stable-Diffusion-style pipelines, built in milliseconds for tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def byte_level_alphabet() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for raw bytes (GPT-2 / CLIP convention)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    unprintable = [byte for byte in range(256) if byte not in printable]
    return [chr(code) for code in printable] + [chr(256 + n) for n in range(len(unprintable))]


def tiny_clip_tokenizer(folder: Path):
    """A CLIP tokenizer over single byte-level characters (no merges): no download needed."""
    from transformers import CLIPTokenizer

    characters = byte_level_alphabet()
    vocab = {}
    for token in characters + [c + "</w>" for c in characters] + ["<|startoftext|>", "<|endoftext|>"]:
        vocab[token] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)


def build_tiny_sd(
    folder: Path, *, prediction_type: str = "epsilon", seed: int = 0, inpainting: bool = False
) -> Path:
    """``inpainting``: a 9-channel UNet (latent + mask + masked image), as SD inpainting checkpoints."""
    import diffusers
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=9 if inpainting else 4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=8,
        sample_size=16,
    )
    tokenizer = tiny_clip_tokenizer(folder.parent / f"{folder.name}-tokenizer-src")
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            vocab_size=len(tokenizer),
            max_position_embeddings=16,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type=prediction_type,
        timestep_spacing="leading",
        steps_offset=1,
    )
    pipeline_class = (
        diffusers.StableDiffusionInpaintPipeline if inpainting else diffusers.StableDiffusionPipeline
    )
    pipe = pipeline_class(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder
