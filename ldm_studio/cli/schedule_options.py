"""``--schedule`` and ``--tcd-gamma``: A1111's schedule type beside ``--sampler``, and TCD's gamma."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ldm_studio.cli import CliError
from ldm_studio.cli.network_options import split_lora
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.samplers import (
    DEFAULT_SCHEDULE,
    DEFAULT_TCD_GAMMA,
    check_schedule_choice,
    schedule_names,
)


def add_schedule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schedule",
        default=DEFAULT_SCHEDULE,
        choices=schedule_names(),
        metavar="NAME",
        help=f"schedule type ({', '.join(schedule_names())}); SGM Uniform = trailing spacing "
        "(SDXL-Lightning, Hyper-SD); default: the sampler's own",
    )
    parser.add_argument(
        "--tcd-gamma",
        type=float,
        default=None,
        metavar="G",
        help=f"TCD only: noise per step, 0 (deterministic) .. 1 (default {DEFAULT_TCD_GAMMA})",
    )


def schedule_arguments(args: argparse.Namespace, extras: dict[str, Any]) -> dict[str, Any]:
    """The request fields ``--schedule`` gives (``--tcd-gamma`` goes into ``extras``); checked now,
    before a model is loaded, so a pairing the sampler cannot take fails in a second."""
    try:
        check_schedule_choice(args.sampler, args.schedule)
    except ValueError as error:
        raise CliError(str(error), status=2) from error
    if args.tcd_gamma is not None:
        if args.sampler != "TCD":
            raise CliError("--tcd-gamma only applies to the TCD sampler (--sampler TCD)", status=2)
        if not 0.0 <= args.tcd_gamma <= 1.0:
            raise CliError(f"--tcd-gamma must be between 0 and 1, got {args.tcd_gamma:g}", status=2)
        extras["tcd_gamma"] = args.tcd_gamma
    return {"schedule": args.schedule}


def add_preset_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--few-step",
        action="store_true",
        help="a few-step model or LoRA (LCM, Turbo, Lightning, Hyper-SD, TCD, recognised from the file): "
        "use its authors' sampler, schedule, steps, CFG and size instead of --sampler/--steps/--cfg",
    )


def with_few_step_preset(
    args: argparse.Namespace, model_path: Path, request: GenerationRequest
) -> GenerationRequest:
    """``--few-step``: the request with the preset of the model, else of the first few-step LoRA named
    with ``--lora`` (the user's choice in the model's settings counts); says which on stderr."""
    if not getattr(args, "few_step", False):
        return request
    from ldm_studio.engine.checkpoints.settings import get_model_settings
    from ldm_studio.engine.distilled import recognise_path

    preset = recognise_path(model_path, get_model_settings(model_path))
    what = "model"
    for value in [] if preset is not None else args.lora:
        preset = recognise_path(Path(split_lora(value)[0]))
        what = "LoRA"
        if preset is not None:
            break
    if preset is None:
        raise CliError(
            f"--few-step: {model_path.name} is not a few-step model that LDM Studio recognises "
            "(its name and metadata do not say LCM, Turbo, Lightning, Hyper-SD or TCD; set it in "
            "the model settings or give --sampler, --steps and --cfg)",
            status=2,
        )
    print(f"{preset.label} {what}: {preset.summary()}", file=sys.stderr)
    return preset.applied(request)


def few_step_line(path: Path) -> str:
    """``Turbo: Euler a, 1 step, CFG off, 512×512`` for ``ldm-studio info``; "" for an ordinary model."""
    from ldm_studio.engine.checkpoints.settings import get_model_settings
    from ldm_studio.engine.distilled import recognise_path

    preset = recognise_path(path, get_model_settings(path))
    return f"{preset.label} ({preset.source}): {preset.summary()}" if preset else ""
