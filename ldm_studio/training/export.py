"""Write a finished (or in-progress) LDM run as a diffusers ``StableDiffusionPipeline`` folder.

The per-channel latent normalisation is folded into the autoencoder's ``quant_conv`` and
``post_quant_conv`` so the exported VAE yields normalised latents directly (scaling factor 1.0:
diffusers only supports a scalar). The frozen text encoder is not copied: ``text_encoder/`` holds a
pointer to the installed Python package (resolved by ``ldm_studio.engine.loader``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from ldm_studio.training.config import LdmConfig, load_config
from ldm_studio.training.diffusion import scheduler_settings
from ldm_studio.training.model_card import write_model_card
from ldm_studio.training.text import (
    TEXT_ENCODER_CLASS,
    TEXT_ENCODER_PACKAGE,
    TEXT_ENCODER_SUBPATH,
    load_text_encoder,
    load_tokenizer,
)

EXTERNAL_COMPONENT_FILE = "ldm_studio_external.json"
SAMPLE_SEEDS = (1, 2, 3, 4)


@torch.no_grad()
def fold_latent_normalisation(vae, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Make ``vae`` encode to (z - mean) / std and decode from it, per latent channel, in place."""
    channels = mean.numel()
    quant, post = vae.quant_conv, vae.post_quant_conv
    if quant is None or post is None:
        raise ValueError("folding the latent normalisation needs quant_conv and post_quant_conv")
    weight, bias = quant.weight.data, quant.bias.data  # rows: channels of the mean, then of the log-variance
    weight[:channels] /= std[:, None, None, None]
    bias[:channels] = (bias[:channels] - mean) / std
    bias[channels:] -= 2 * std.log()
    post_weight = post.weight.data.clone()
    post.bias.data += post_weight[:, :, 0, 0] @ mean
    post.weight.data = post_weight * std[None, :, None, None]


def model_index() -> dict:
    import diffusers

    return {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDPMScheduler"],
        "text_encoder": ["transformers", TEXT_ENCODER_CLASS],
        "tokenizer": ["transformers", "BertTokenizerFast"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def load_pipeline(folder: Path):
    """The exported folder as a pipeline, through the app's loader when it is there."""
    try:
        from ldm_studio.engine.loader import load_model
    except ImportError:
        load_model = None
    if load_model is not None:
        return load_model(folder, device="cpu", dtype="float32").pipe
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(
        folder,
        text_encoder=load_text_encoder(),
        local_files_only=True,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def fit_preview(vae) -> str:
    from ldm_studio.engine.preview import fit_latent_projection

    return fit_latent_projection(vae.float()).to_json()


def export_run(run_dir: Path, out_dir: Path) -> Path:
    """Write the model folder for the run's EMA UNet; the old folder is replaced only once all is written."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not (run_dir / "unet_ema" / "config.json").is_file():
        raise FileNotFoundError(
            f"{run_dir} has no trained UNet yet (unet_ema/ is written at each sample step)"
        )
    config = load_config(LdmConfig, run_dir / "ldm_config.toml")
    cache = torch.load(run_dir / "cache.pt", map_location="cpu", weights_only=True)
    staging = run_dir / "export.partial"  # inside the run: a half-written export never shows up elsewhere
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)

    vae = AutoencoderKL.from_pretrained(run_dir / "vae", local_files_only=True)
    fold_latent_normalisation(vae, cache["channel_mean"], cache["channel_std"])
    vae.register_to_config(scaling_factor=1.0, shift_factor=None)
    vae.to(torch.float16).save_pretrained(staging / "vae")
    unet = UNet2DConditionModel.from_pretrained(run_dir / "unet_ema", local_files_only=True)
    unet.to(torch.float16).save_pretrained(staging / "unet")
    DDPMScheduler(**scheduler_settings(config)).save_pretrained(staging / "scheduler")
    load_tokenizer(config.text_max_length).save_pretrained(staging / "tokenizer")
    (staging / "text_encoder").mkdir()
    (staging / "text_encoder" / EXTERNAL_COMPONENT_FILE).write_text(
        json.dumps(
            {
                "python_package": TEXT_ENCODER_PACKAGE,
                "path": TEXT_ENCODER_SUBPATH,
                "class": TEXT_ENCODER_CLASS,
            },
            indent=2,
        )
        + "\n"
    )
    (staging / "model_index.json").write_text(json.dumps(model_index(), indent=2) + "\n")
    (staging / "preview.json").write_text(fit_preview(vae) + "\n")
    (staging / "captions.txt").write_text("".join(f"{c}\n" for c in cache["captions"]), encoding="utf-8")
    (staging / "examples.txt").write_text("".join(f"{p}\n" for p in config.sample_prompts), encoding="utf-8")
    for name in ("vae_config.toml", "ldm_config.toml"):
        if (run_dir / name).is_file():
            shutil.copy(run_dir / name, staging / name)

    step_file = run_dir / "unet_ema" / "step.txt"
    training = {"denoiser_steps": int(step_file.read_text()) if step_file.is_file() else None}
    (staging / "training.json").write_text(json.dumps(training, indent=2) + "\n")
    pipe = load_pipeline(staging)
    check_prompt_states(pipe, cache)
    write_sample_grid(pipe, list(config.sample_prompts), staging / "samples.png", config)
    write_model_card(staging, run_dir, config)
    replaced = run_dir / "export.old"
    shutil.rmtree(replaced, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.exists():
        out_dir.rename(replaced)
    staging.rename(out_dir)
    shutil.rmtree(replaced, ignore_errors=True)
    return out_dir


@torch.no_grad()
def check_prompt_states(pipe, cache: dict, count: int = 4) -> None:
    """The pipeline must encode captions exactly as training did (the states are stored in bf16)."""
    captions = cache["captions"][:count]
    states, _ = pipe.encode_prompt(captions, "cpu", 1, False)
    trained = cache["caption_states"][1 : count + 1].float()
    empty, _ = pipe.encode_prompt([""], "cpu", 1, False)
    difference = max(
        float((states.float() - trained).abs().max()),
        float((empty.float() - cache["caption_states"][:1].float()).abs().max()),
    )
    if difference > 0.05:
        raise ValueError(
            f"exported pipeline encodes prompts differently from training (max diff {difference})"
        )


@torch.no_grad()
def write_sample_grid(pipe, prompts: list[str], path: Path, config: LdmConfig) -> None:
    from diffusers import DPMSolverMultistepScheduler
    from PIL import Image

    from ldm_studio.training.run_log import image_grid

    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    size = int(pipe.unet.config.sample_size) * pipe.vae_scale_factor
    tiles = []
    for prompt in prompts:
        generators = [torch.Generator().manual_seed(seed) for seed in SAMPLE_SEEDS]
        images = pipe(
            [prompt] * len(SAMPLE_SEEDS),
            height=size,
            width=size,
            num_inference_steps=config.sample_steps,
            guidance_scale=config.sample_guidance,
            generator=generators,
            output_type="np",
        ).images
        tiles += [(image * 255).round().clip(0, 255).astype("uint8") for image in images]
    grid = image_grid(tiles, columns=len(SAMPLE_SEEDS) * 2, scale=2)
    grid.save(path)
    Image.open(path).verify()


def refresh_model_card(run_dir: Path, out_dir: Path) -> None:
    """Rewrite ``out_dir/README.md`` from the run's records, leaving the weights as they are."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not (out_dir / "model_index.json").is_file():
        raise FileNotFoundError(f"{out_dir} is no exported model folder")
    write_model_card(out_dir, run_dir, load_config(LdmConfig, run_dir / "ldm_config.toml"))
