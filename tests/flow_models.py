"""Tiny random-weight SD3 and FLUX.1 diffusers folders for tests (transformer denoisers, flow matching).

The T5 tokenizer is a SentencePiece model trained here, from a few sentences, with the
``sentencepiece`` package: no hub, no shipped vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tests.tiny_models import tiny_clip_tokenizer

SENTENCES = [
    "a red apple on a wooden table",
    "a cat sitting in the sun",
    "a photo of a dog running on the beach",
    "an astronaut riding a horse on the moon",
    "a bowl of fruit, oil painting, warm light",
    "portrait of a woman with blue eyes",
    "a small house in a snowy forest at night",
    "the quick brown fox jumps over the lazy dog",
]
LATENT_CHANNELS = 16
IMAGE_SIZE = 32  # pixels: a 16x16 latent with the tiny 2x VAE (8x8 FLUX tokens of 2x2 patches)


def train_t5_tokenizer(folder: Path, vocab_size: int = 64):
    """A T5 tokenizer (pad 0, eos 1, unk 2, as T5's) from a SentencePiece unigram model trained here."""
    import sentencepiece
    from transformers import T5TokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 4) + "\n", encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / "spiece"),
        vocab_size=vocab_size,
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    # transformers 5 builds a T5 tokenizer from (piece, score) pairs; given only vocab_file it silently
    # makes a 4-token vocabulary that reads every word as <unk>
    model = sentencepiece.SentencePieceProcessor(model_file=str(folder / "spiece.model"))
    vocab = [(model.id_to_piece(i), model.get_score(i)) for i in range(model.get_piece_size())]
    tokenizer = T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=512)
    assert tokenizer("a cat").input_ids == [*model.encode("a cat"), tokenizer.eos_token_id]
    return tokenizer


def tiny_flow_vae(seed: int):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=8,
        sample_size=IMAGE_SIZE,
        scaling_factor=1.5305,  # SD3's and FLUX's own values: the tests check they are applied
        shift_factor=0.0609,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def tiny_clip(folder: Path, hidden: int, seed: int, with_projection: bool):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = tiny_clip_tokenizer(folder)
    torch.manual_seed(seed)
    config = CLIPTextConfig(
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        projection_dim=hidden,
        vocab_size=len(tokenizer),
        max_position_embeddings=16,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = CLIPTextModelWithProjection(config) if with_projection else CLIPTextModel(config)
    return tokenizer, model


def tiny_t5(folder: Path, d_model: int, seed: int):
    from transformers import T5Config, T5EncoderModel

    tokenizer = train_t5_tokenizer(folder)
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_ff=2 * d_model,
        d_kv=8,
        num_layers=1,
        num_heads=2,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
    )
    return tokenizer, T5EncoderModel(config)


def build_tiny_sd3(
    folder: Path,
    *,
    seed: int = 0,
    shift: float = 3.0,
    large: bool = False,
    clip_hidden: int = 8,
    head_width: int = 8,
    t5_width: int = 32,
    dual_attention_layers: tuple[int, ...] = (),
) -> Path:
    """``large``: SD 3.5's layout marker (RMS norm on q/k), as SD 3.5 Large has it;
    ``dual_attention_layers``: SD 3.5 Medium's. ``clip_hidden``, ``head_width``, ``t5_width``: sizes that
    follow single-file conventions (64-wide heads) in tests/flow_layouts.py."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    work = folder.parent / f"{folder.name}-src"
    tokenizer, text_encoder = tiny_clip(work / "clip_l", clip_hidden, seed + 1, True)
    tokenizer_2, text_encoder_2 = tiny_clip(work / "clip_g", clip_hidden, seed + 2, True)
    tokenizer_3, text_encoder_3 = tiny_t5(work / "t5", t5_width, seed + 3)
    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(
        sample_size=IMAGE_SIZE // 2,
        patch_size=2,
        in_channels=LATENT_CHANNELS,
        num_layers=len(dual_attention_layers) + 1,  # the last block (context_pre_only) has none
        attention_head_dim=head_width,
        num_attention_heads=2,
        joint_attention_dim=t5_width,
        caption_projection_dim=2 * head_width,
        pooled_projection_dim=2 * clip_hidden,
        out_channels=LATENT_CHANNELS,
        pos_embed_max_size=16,
        qk_norm="rms_norm" if large else None,
        dual_attention_layers=dual_attention_layers,
    )
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=shift),
        vae=tiny_flow_vae(seed + 4),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        text_encoder_3=text_encoder_3,
        tokenizer_3=tokenizer_3,
    )
    pipe.save_pretrained(folder)
    return folder


def build_tiny_flux(
    folder: Path,
    *,
    seed: int = 0,
    dev: bool = True,
    clip_hidden: int = 8,
    head_width: int = 16,
    rope_axes: tuple[int, int, int] = (4, 6, 6),
) -> Path:
    """FLUX.1 dev (``guidance_embeds``, resolution-dependent shift) or schnell (neither).

    ``clip_hidden``, ``head_width`` and ``rope_axes``: what single-file loading cannot read from
    shapes follows conventions (64-wide CLIP heads, FLUX's rotary proportions); tests/flow_layouts.py
    builds with values that follow them."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    work = folder.parent / f"{folder.name}-src"
    tokenizer, text_encoder = tiny_clip(work / "clip_l", clip_hidden, seed + 1, False)
    tokenizer_2, text_encoder_2 = tiny_t5(work / "t5", 32, seed + 2)
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=LATENT_CHANNELS * 4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=head_width,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=clip_hidden,
        guidance_embeds=dev,
        axes_dims_rope=rope_axes,
    )
    if dev:
        scheduler = FlowMatchEulerDiscreteScheduler(
            shift=3.0,
            use_dynamic_shifting=True,
            base_image_seq_len=256,
            max_image_seq_len=4096,
            base_shift=0.5,
            max_shift=1.15,
        )
    else:
        scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=False)
    pipe = FluxPipeline(
        transformer=transformer,
        scheduler=scheduler,
        vae=tiny_flow_vae(seed + 4),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
    )
    pipe.save_pretrained(folder)
    return folder
