"""Write the per-family config folders beside this script. Not run by the app.

Each folder is what diffusers' ``from_single_file(config=...)`` reads instead of the hub: a
``model_index.json`` that lists only shipped components, and one config per component, with every
setting written out (a key left unset is filled by whichever class reads it, so two loads of the
same weights could differ). The numbers are the public architectures of Stable Diffusion 1.x, 2.x
(512 epsilon and 768 v-prediction) and SDXL base; tests/engine/test_checkpoint_configs.py checks
their parameter counts. Tokenizer folders hold only their settings: the shared CLIP vocabulary in
``resources/tokenizers/clip`` is copied in when a config folder is put together for loading.

    python resources/configs/make_configs.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import diffusers
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig

HERE = Path(__file__).resolve().parent

# Every noise-schedule setting that some sampler class reads. Written for every family so that
# swapping the sampler with ``from_config`` never falls back to a class default (PNDM and DDIM
# default to "leading" spacing, Euler and DPM++ to "linspace"; DDIM defaults clip_sample to true).
SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "trained_betas": None,
    "timestep_spacing": "leading",
    "steps_offset": 1,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "thresholding": False,
    "dynamic_thresholding_ratio": 0.995,
    "sample_max_value": 1.0,
    "rescale_betas_zero_snr": False,
    "interpolation_type": "linear",
    "use_karras_sigmas": False,
    "use_exponential_sigmas": False,
    "use_beta_sigmas": False,
    "sigma_min": None,
    "sigma_max": None,
    "final_sigmas_type": "zero",
    "timestep_type": "discrete",
}

CLIP_L = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
}
# OpenCLIP ViT-H/14's text tower; SD 2.x conditions on the penultimate of its 24 layers, so the
# diffusers model keeps 23.
OPEN_CLIP_H = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 23,
    "num_attention_heads": 16,
    "projection_dim": 512,
    "hidden_act": "gelu",
}
# OpenCLIP ViT-bigG/14 (SDXL's second encoder): all 32 layers, with its text projection.
OPEN_CLIP_BIG_G = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "projection_dim": 1280,
    "hidden_act": "gelu",
}

SD_UNET = {
    "sample_size": 64,
    "block_out_channels": [320, 640, 1280, 1280],
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "layers_per_block": 2,
}
SD1_UNET = {**SD_UNET, "cross_attention_dim": 768, "attention_head_dim": 8, "use_linear_projection": False}
SD2_UNET = {
    **SD_UNET,
    "cross_attention_dim": 1024,
    "attention_head_dim": [5, 10, 20, 20],
    "use_linear_projection": True,
}
SDXL_UNET = {
    "sample_size": 128,
    "block_out_channels": [320, 640, 1280],
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "layers_per_block": 2,
    "transformer_layers_per_block": [1, 2, 10],
    "attention_head_dim": [5, 10, 20],
    "cross_attention_dim": 2048,
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
}

SD_VAE = {
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "layers_per_block": 2,
    "latent_channels": 4,
    "sample_size": 512,
    "scaling_factor": 0.18215,
    "force_upcast": True,
}


def model_config(model_class: type, settings: dict[str, Any]) -> dict[str, Any]:
    """The full config (every init argument) of ``model_class`` built with ``settings``."""
    with torch.device("meta"):  # no memory: only the resolved config is kept
        model = model_class(**settings)
    full = {key: value for key, value in model.config.items() if not key.startswith("_")}
    return {"_class_name": model_class.__name__, "_diffusers_version": diffusers.__version__, **full}


def text_config(settings: dict[str, Any], architecture: str, pad_token_id: int) -> dict[str, Any]:
    config = CLIPTextConfig(
        vocab_size=49408,
        max_position_embeddings=77,
        layer_norm_eps=1e-5,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=pad_token_id,
        architectures=[architecture],
        **settings,
    ).to_dict()
    config.pop("transformers_version", None)
    for unused in ("id2label", "label2id", "_name_or_path", "problem_type"):
        config.pop(unused, None)
    return config


def tokenizer_config(pad_token: str) -> dict[str, Any]:
    return {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": pad_token,
        "do_lower_case": True,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": True,
        "errors": "replace",
    }


def scheduler_config(class_name: str, prediction_type: str) -> dict[str, Any]:
    return {
        "_class_name": class_name,
        "_diffusers_version": diffusers.__version__,
        **SCHEDULE,
        "prediction_type": prediction_type,
    }


def write(folder: Path, name: str, data: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def sd_family(name: str, unet: dict, text: dict, scheduler: dict, sample_size: int, upcast: bool) -> None:
    root = HERE / name
    write(
        root,
        "model_index.json",
        {
            "_class_name": "StableDiffusionPipeline",
            "_diffusers_version": diffusers.__version__,
            "requires_safety_checker": False,
            "feature_extractor": [None, None],
            "image_encoder": [None, None],
            "safety_checker": [None, None],
            "scheduler": ["diffusers", scheduler["_class_name"]],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
    )
    write(root / "scheduler", "scheduler_config.json", scheduler)
    write(
        root / "unet",
        "config.json",
        model_config(
            UNet2DConditionModel, {**unet, "sample_size": sample_size // 8, "upcast_attention": upcast}
        ),
    )
    write(root / "vae", "config.json", model_config(AutoencoderKL, {**SD_VAE, "sample_size": sample_size}))
    # SD 1.x pads prompts with the end token; OpenCLIP pads with zeros, which is "!".
    pad, pad_id = ("<|endoftext|>", 49407) if text is CLIP_L else ("!", 0)
    write(root / "text_encoder", "config.json", text_config(text, "CLIPTextModel", pad_id))
    write(root / "tokenizer", "tokenizer_config.json", tokenizer_config(pad))


def sdxl_family() -> None:
    root = HERE / "sdxl"
    write(
        root,
        "model_index.json",
        {
            "_class_name": "StableDiffusionXLPipeline",
            "_diffusers_version": diffusers.__version__,
            "force_zeros_for_empty_prompt": True,
            "feature_extractor": [None, None],
            "image_encoder": [None, None],
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        },
    )
    write(root / "scheduler", "scheduler_config.json", scheduler_config("EulerDiscreteScheduler", "epsilon"))
    write(root / "unet", "config.json", model_config(UNet2DConditionModel, SDXL_UNET))
    sdxl_vae = {**SD_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True}
    write(root / "vae", "config.json", model_config(AutoencoderKL, sdxl_vae))
    write(root / "text_encoder", "config.json", text_config(CLIP_L, "CLIPTextModel", 49407))
    write(
        root / "text_encoder_2", "config.json", text_config(OPEN_CLIP_BIG_G, "CLIPTextModelWithProjection", 0)
    )
    write(root / "tokenizer", "tokenizer_config.json", tokenizer_config("<|endoftext|>"))
    write(root / "tokenizer_2", "tokenizer_config.json", tokenizer_config("!"))


def main() -> None:
    sd_family("sd1", SD1_UNET, CLIP_L, scheduler_config("PNDMScheduler", "epsilon"), 512, upcast=False)
    sd_family("sd2", SD2_UNET, OPEN_CLIP_H, scheduler_config("PNDMScheduler", "epsilon"), 512, upcast=False)
    # SD 2.x 768-v: same weights layout, v-prediction, 768 px; upcast attention as SD 2.1 does (fp16 NaNs).
    sd_family(
        "sd2-v", SD2_UNET, OPEN_CLIP_H, scheduler_config("DDIMScheduler", "v_prediction"), 768, upcast=True
    )
    sdxl_family()


if __name__ == "__main__":
    main()
