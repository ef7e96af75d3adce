"""Tiny random CLIP text encoders with real 77-token windows, and their character-level tokenizers."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.tiny_models import tiny_clip_tokenizer


def clip_tokenizer_77(folder: Path, *, pad_token: str | None = None):
    tokenizer = tiny_clip_tokenizer(folder)
    tokenizer.model_max_length = 77
    if pad_token is not None:
        tokenizer.pad_token = pad_token
    return tokenizer


def clip_text_encoder(
    tokenizer, *, hidden: int = 16, layers: int = 3, projection: int | None = None, seed: int = 0
):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        projection_dim=projection or hidden,
    )
    model = CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)
    # a fresh layer norm has zero bias, so every token's output has mean ~0 and A1111's mean rescaling
    # (original_mean / new_mean) would divide noise by noise; real CLIP outputs have a clear mean
    text_model = getattr(model, "text_model", model)
    with torch.no_grad():
        text_model.final_layer_norm.bias.normal_(0.5, 0.5)
    return model.eval()
