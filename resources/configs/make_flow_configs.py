"""Write the FLUX.1 config folders beside this script (sibling of make_configs.py). Not run by the app.

What single-file FLUX loading reads instead of the hub: every setting written out, no weights.
Where the numbers come from:
- transformer: diffusers 0.42's ``FluxTransformer2DModel`` defaults, which are FLUX.1's published
  architecture (19 double / 38 single blocks, 24 heads of 128, text width 4096, pooled 768, rotary
  axes 16/56/56; scripts/convert_flux_to_diffusers.py builds ``FluxTransformer2DModel()`` bare);
  dev adds the guidance input (``guidance_embeds``). Loading refits the widths and counts to the file.
- scheduler: FlowMatchEulerDiscreteScheduler; dev shifts with the image size from (256 tokens, 0.5) to
  (4096, 1.15), FluxPipeline's ``calculate_shift`` defaults; schnell uses a fixed shift of 1.
- vae: BFL's autoencoder (ch 128, ch_mult 1/2/4/4, 2 res blocks, 16 latent channels, no quant convs)
  with scaling 0.3611 and shift 0.1159 (the FLUX values diffusers lists in utils/remote_utils.py).
- text_encoder: CLIP ViT-L/14's text tower (make_configs.CLIP_L); text_encoder_2: T5 v1.1 XXL's
  encoder (vocabulary 32128, width 4096, 24 layers, 64 heads of 64, gated-GELU MLP 10240, 32 relative
  buckets up to distance 128, layer-norm epsilon 1e-6); both are refitted to the files' shapes.
- tokenizer_2: none here; engine.t5_tokenizer ships T5's (resources/tokenizers/t5).

SD 3 / SD 3.5 folders (``sd3`` = SD 3 Medium, ``sd3.5-medium``, ``sd3.5-large``, also SD 3.5 Large
Turbo, which has Large's architecture), for single-file SD 3 loading:
- transformer: diffusers 0.42's ``SD3Transformer2DModel`` with the published sizes: SD 3 Medium 24
  layers, 24 heads of 64, caption_projection_dim 1536, pos_embed_max_size 192; SD 3.5 Large 38 layers,
  38 heads of 64, caption 2432, qk_norm "rms_norm", pos_embed_max_size 192; SD 3.5 Medium 24 layers,
  24 heads, caption 1536, qk_norm "rms_norm", MMDiT-X dual attention in layers 0..12,
  pos_embed_max_size 384. All: patch 2, 16 latent channels in and out, text width 4096 (T5-XXL),
  pooled 2048 (CLIP-L 768 + CLIP-G 1280), sample_size 128 (1024 px). Refitted to the file's shapes.
- scheduler: FlowMatchEulerDiscreteScheduler with a fixed shift of 3.0 (SD 3's diffusers releases).
- vae: FLUX's autoencoder layout (16 latent channels, no quant convs) with SD 3's scaling 1.5305 and
  shift 0.0609 (the SD 3 values diffusers lists in utils/remote_utils.py).
- text_encoder: CLIP ViT-L/14 with its projection (``CLIPTextModelWithProjection``; SD 3's files
  carry none, so loading uses the identity, as diffusers' single-file loader does); text_encoder_2:
  OpenCLIP ViT-bigG/14 with projection (1280 wide, 32 layers, 20 heads, projection 1280,
  make_configs.OPEN_CLIP_BIG_G); text_encoder_3: T5 v1.1 XXL's encoder, as for FLUX.
- tokenizer pads with the end token, tokenizer_2 with "!" (id 0), as SDXL's second tokenizer and
  ComfyUI's CLIP-G tokenizer (``pad_with_end=False``) do; tokenizer_3: the shipped T5 one.

    python resources/configs/make_flow_configs.py
"""

from __future__ import annotations

from pathlib import Path

import diffusers
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
)
from make_configs import CLIP_L, OPEN_CLIP_BIG_G, model_config, text_config, tokenizer_config, write
from transformers import T5Config

HERE = Path(__file__).resolve().parent

FLUX_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "layers_per_block": 2,
    "latent_channels": 16,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "mid_block_add_attention": True,
    "force_upcast": True,
}
T5_XXL = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "dropout_rate": 0.1,
    "layer_norm_epsilon": 1e-6,
    "feed_forward_proj": "gated-gelu",
    "is_encoder_decoder": True,
    "tie_word_embeddings": False,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}
FLUX_SHIFT = {
    "dev": {
        "shift": 3.0,
        "use_dynamic_shifting": True,
        "base_image_seq_len": 256,
        "max_image_seq_len": 4096,
        "base_shift": 0.5,
        "max_shift": 1.15,
    },
    "schnell": {
        "shift": 1.0,
        "use_dynamic_shifting": False,
        "base_image_seq_len": 256,
        "max_image_seq_len": 4096,
        "base_shift": 0.5,
        "max_shift": 1.15,
    },
}


def scheduler_config(settings: dict) -> dict:
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, **settings)
    full = {key: value for key, value in scheduler.config.items() if not key.startswith("_")}
    return {
        "_class_name": "FlowMatchEulerDiscreteScheduler",
        "_diffusers_version": diffusers.__version__,
        **full,
    }


def t5_config() -> dict:
    config = T5Config(architectures=["T5EncoderModel"], **T5_XXL).to_dict()
    for unused in ("transformers_version", "id2label", "label2id", "_name_or_path", "problem_type"):
        config.pop(unused, None)
    return config


def flux_family(variant: str) -> None:
    root = HERE / f"flux-{variant}"
    write(
        root,
        "model_index.json",
        {
            "_class_name": "FluxPipeline",
            "_diffusers_version": diffusers.__version__,
            "feature_extractor": [None, None],
            "image_encoder": [None, None],
            "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "T5EncoderModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "T5TokenizerFast"],
            "transformer": ["diffusers", "FluxTransformer2DModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
    )
    write(root / "scheduler", "scheduler_config.json", scheduler_config(FLUX_SHIFT[variant]))
    transformer = model_config(FluxTransformer2DModel, {"guidance_embeds": variant == "dev"})
    write(root / "transformer", "config.json", transformer)
    write(root / "vae", "config.json", model_config(AutoencoderKL, FLUX_VAE))
    write(root / "text_encoder", "config.json", text_config(CLIP_L, "CLIPTextModel", 49407))
    write(root / "text_encoder_2", "config.json", t5_config())
    write(root / "tokenizer", "tokenizer_config.json", tokenizer_config("<|endoftext|>"))


SD3_TRANSFORMERS = {
    "sd3": {"num_layers": 24, "num_attention_heads": 24, "caption_projection_dim": 1536},
    "sd3.5-medium": {
        "num_layers": 24,
        "num_attention_heads": 24,
        "caption_projection_dim": 1536,
        "qk_norm": "rms_norm",
        "dual_attention_layers": tuple(range(13)),
        "pos_embed_max_size": 384,
    },
    "sd3.5-large": {
        "num_layers": 38,
        "num_attention_heads": 38,
        "caption_projection_dim": 2432,
        "qk_norm": "rms_norm",
    },
}
SD3_COMMON = {
    "sample_size": 128,
    "patch_size": 2,
    "in_channels": 16,
    "out_channels": 16,
    "attention_head_dim": 64,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 2048,
    "pos_embed_max_size": 192,
}
SD3_VAE = {**FLUX_VAE, "scaling_factor": 1.5305, "shift_factor": 0.0609}


def sd3_family(name: str) -> None:
    root = HERE / name
    write(
        root,
        "model_index.json",
        {
            "_class_name": "StableDiffusion3Pipeline",
            "_diffusers_version": diffusers.__version__,
            "feature_extractor": [None, None],
            "image_encoder": [None, None],
            "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "text_encoder_3": ["transformers", "T5EncoderModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "tokenizer_3": ["transformers", "T5TokenizerFast"],
            "transformer": ["diffusers", "SD3Transformer2DModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
    )
    write(root / "scheduler", "scheduler_config.json", scheduler_config({"shift": 3.0}))
    transformer = model_config(SD3Transformer2DModel, {**SD3_COMMON, **SD3_TRANSFORMERS[name]})
    write(root / "transformer", "config.json", transformer)
    write(root / "vae", "config.json", model_config(AutoencoderKL, SD3_VAE))
    write(root / "text_encoder", "config.json", text_config(CLIP_L, "CLIPTextModelWithProjection", 49407))
    clip_g = text_config(OPEN_CLIP_BIG_G, "CLIPTextModelWithProjection", 0)  # pads with "!" (id 0)
    write(root / "text_encoder_2", "config.json", clip_g)
    write(root / "text_encoder_3", "config.json", t5_config())
    write(root / "tokenizer", "tokenizer_config.json", tokenizer_config("<|endoftext|>"))
    write(root / "tokenizer_2", "tokenizer_config.json", tokenizer_config("!"))


def main() -> None:
    flux_family("dev")
    flux_family("schnell")
    for name in SD3_TRANSFORMERS:
        sd3_family(name)


if __name__ == "__main__":
    main()
