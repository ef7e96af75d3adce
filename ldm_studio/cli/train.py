"""``ldm-studio train vae|ldm|export``: train a small latent diffusion model on a captioned image folder."""

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
