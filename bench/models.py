"""Random-weight models for benchmarks: the shapes matter for timing, the weights do not."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def _tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    characters = [chr(code) for code in printable] + [chr(256 + n) for n in range(256 - len(printable))]
    vocab = {}
    for token in characters + [c + "</w>" for c in characters] + ["<|startoftext|>", "<|endoftext|>"]:
        vocab[token] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def build_small_sd(folder: Path, *, image_size: int = 64, seed: int = 0) -> Path:
    """An SD-architecture model at FACTS.md's 'tiny' size: f=4 VAE (32,64,128), UNet (64,128,256)."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if (folder / "model_index.json").is_file():
        return folder
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=image_size // 4,
        block_out_channels=(64, 128, 256),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=256,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64, 128),
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        sample_size=image_size,
    )
    tokenizer = _tokenizer(folder.parent / f"{folder.name}-tokenizer")
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=256,
            intermediate_size=1024,
            num_hidden_layers=4,
            num_attention_heads=4,
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        timestep_spacing="leading",
        steps_offset=1,
    )
    StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(folder)
    return folder


def bench_model(path: str | None, scratch: Path) -> Path:
    """The model to measure: the given one, else the bundled one, else a small random SD model."""
    if path:
        return Path(path)
    from ldm_studio.app.catalog import default_model

    return default_model() or build_small_sd(scratch / "small-sd")
