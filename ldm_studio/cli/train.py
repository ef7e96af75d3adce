"""``ldm-studio train vae|ldm|export|lora``: train a small latent diffusion model, or a LoRA for any model."""

from __future__ import annotations

import argparse
from pathlib import Path

from ldm_studio.cli import CliError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train your own small latent diffusion model")
    stages = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)

    vae = stages.add_parser("vae", help="train the autoencoder")
    vae.add_argument("--data", type=Path, required=True, help="folder of images with captions")
    vae.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, logs, vae/)")
    vae.add_argument("--config", type=Path, help="TOML config (default: built-in defaults)")
    vae.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    vae.set_defaults(run=run_vae)

    ldm = stages.add_parser("ldm", help="train the text-conditioned latent denoiser")
    ldm.add_argument("--data", type=Path, required=True, help="folder of images with captions")
    ldm.add_argument("--vae", type=Path, required=True, help="run folder of `train vae` (or its vae/)")
    ldm.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, logs, samples)")
    ldm.add_argument("--config", type=Path, help="TOML config (default: built-in defaults)")
    ldm.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    ldm.add_argument("--export", type=Path, help="also write the diffusers model folder here when done")
    ldm.add_argument(
        "--stop-after",
        type=int,
        metavar="STEP",
        help="stop (checkpoint, and export if asked) after this step of the configured schedule; "
        "--resume goes on from there",
    )
    ldm.set_defaults(run=run_ldm)

    export = stages.add_parser("export", help="write a diffusers model folder from an ldm run")
    export.add_argument("--run", dest="run_dir", type=Path, required=True, help="run folder of `train ldm`")
    export.add_argument("--out", type=Path, required=True, help="model folder to write")
    export.add_argument(
        "--card-only",
        action="store_true",
        help="only rewrite the folder's README.md from the run's records (e.g. after bench/quality_emoji.py)",
    )
    export.set_defaults(run=run_export)
    add_lora_parser(stages)


def add_lora_parser(stages: argparse._SubParsersAction) -> None:
    lora = stages.add_parser(
        "lora", help="train a LoRA (kohya format) for an SD 1.x/2.x/SDXL or LDM Studio model"
    )
    lora.add_argument("--base", type=Path, help="model folder or checkpoint file to adapt")
    lora.add_argument("--data", type=Path, help="folder of images with captions (.txt or metadata.jsonl)")
    lora.add_argument("--out", type=Path, help="LoRA file to write (.safetensors)")
    lora.add_argument("--config", type=Path, help="TOML recipe; the options below override it")
    lora.add_argument("--rank", type=int, help="adapter rank (default 8)")
    lora.add_argument("--alpha", type=float, help="adapter alpha: scale = alpha / rank (default 4)")
    lora.add_argument("--steps", type=int, help="optimizer steps (default 1000)")
    lora.add_argument("--lr", type=float, help="peak learning rate (default 1e-4)")
    lora.add_argument("--trigger", help="word put first in every caption")
    lora.add_argument("--resolution", type=int, help="training side in pixels (default: the model's own)")
    lora.add_argument("--batch", type=int, help="images per step (default 1)")
    lora.add_argument(
        "--text-encoder", action="store_true", default=None, help="also adapt the text encoder(s)"
    )
    lora.add_argument(
        "--gradient-checkpointing", action="store_true", default=None, help="less memory, slower"
    )
    lora.add_argument(
        "--base-dtype", choices=("float32", "bfloat16", "float16"), help="precision of the frozen base"
    )
    lora.add_argument("--min-timestep", type=int, help="train on timesteps from this one (default 0)")
    lora.add_argument("--max-timestep", type=int, help="train on timesteps below this one (default: all)")
    lora.add_argument("--run-dir", type=Path, help="checkpoints, logs and samples (default: <out>-run/)")
    lora.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    lora.add_argument(
        "--stop-after",
        type=int,
        metavar="STEP",
        help="stop (with a checkpoint) after this step; --resume goes on",
    )
    lora.set_defaults(run=run_lora)


def lora_config(args: argparse.Namespace):  # -> LoraTrainingConfig
    import dataclasses

    from ldm_studio.training.config import load_config
    from ldm_studio.training.lora_training import LoraTrainingConfig

    config = load_config(LoraTrainingConfig, args.config)
    top = {
        "base": args.base,
        "data": args.data,
        "out": args.out,
        "run_dir": args.run_dir,
        "rank": args.rank,
        "alpha": args.alpha,
        "trigger": args.trigger,
        "resolution": args.resolution,
        "text_encoder": args.text_encoder,
        "gradient_checkpointing": args.gradient_checkpointing,
        "base_dtype": args.base_dtype,
        "min_timestep": args.min_timestep,
        "max_timestep": args.max_timestep,
    }
    config = dataclasses.replace(config, **{key: value for key, value in top.items() if value is not None})
    run = {"max_steps": args.steps, "batch_size": args.batch}
    run = {key: value for key, value in run.items() if value is not None}
    if run:
        config = dataclasses.replace(config, run=dataclasses.replace(config.run, **run))
    if args.lr is not None:
        config = dataclasses.replace(config, optim=dataclasses.replace(config.optim, learning_rate=args.lr))
    return config


def run_lora(args: argparse.Namespace) -> int:
    from ldm_studio.engine.errors import ModelLoadError
    from ldm_studio.training.lora_training import train_lora

    try:
        if args.stop_after is not None and args.stop_after < 1:
            raise ValueError("--stop-after must be a step number of 1 or more")
        result = train_lora(lora_config(args), resume=args.resume, stop_at_step=args.stop_after)
    except (FileNotFoundError, FileExistsError, ValueError, ModelLoadError) as error:
        raise CliError(str(error)) from error
    if result.out_file is not None:
        print(f"wrote {result.out_file} ({result.steps_done} steps; run folder {result.run_dir})")
    else:
        print(
            f"stopped after step {result.steps_done} of {result.total_steps}; "
            f"--resume continues ({result.run_dir})"
        )
    return 0


def run_vae(args: argparse.Namespace) -> int:
    from ldm_studio.training.config import VaeConfig, load_config
    from ldm_studio.training.vae_training import train_vae

    config = load_config(VaeConfig, args.config)
    try:
        metrics = train_vae(args.data, args.out, config, resume=args.resume)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        raise CliError(str(error)) from error
    if "psnr_db" in metrics:
        print(f"held-out PSNR {metrics['psnr_db']:.2f} dB over {metrics['images']} images")
    return 0


def run_ldm(args: argparse.Namespace) -> int:
    from ldm_studio.training.config import LdmConfig, load_config
    from ldm_studio.training.ldm_training import train_ldm

    config = load_config(LdmConfig, args.config)
    try:
        if args.stop_after is not None and args.stop_after < 1:
            raise ValueError("--stop-after must be a step number of 1 or more")
        train_ldm(
            args.data,
            args.vae,
            args.out,
            config,
            resume=args.resume,
            export_to=args.export,
            stop_at_step=args.stop_after,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        raise CliError(str(error)) from error
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ldm_studio.training.export import export_run, refresh_model_card

    try:
        if args.card_only:
            refresh_model_card(args.run_dir, args.out)
        else:
            export_run(args.run_dir, args.out)
    except (FileNotFoundError, ValueError) as error:
        raise CliError(str(error)) from error
    print(f"wrote {args.out}")
    return 0
