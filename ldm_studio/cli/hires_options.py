"""``--hires-scale`` / ``--hires-size`` and friends: A1111's hires fix on the command line.

Hires fix is on when ``--hires-scale`` or ``--hires-size`` is given; the other ``--hires-*`` options
only tune it, so giving one of them alone is a mistake worth a sentence.
"""

from __future__ import annotations

import argparse
import re

from ldm_studio.cli import CliError
from ldm_studio.engine.hires_request import DEFAULT_UPSCALER, LATENT_MODES, PIXEL_RESIZES, HiresFix

TUNING = (
    "hires_steps",
    "hires_strength",
    "hires_upscaler",
    "hires_sampler",
    "hires_prompt",
    "hires_negative",
)
TUNING_DEFAULTS = {"hires_steps": 0, "hires_strength": 0.7, "hires_upscaler": DEFAULT_UPSCALER}


def add_hires_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "hires fix (A1111's): generate at the size asked, enlarge, then denoise again at the larger size"
    )
    size = group.add_mutually_exclusive_group()
    size.add_argument("--hires-scale", type=float, metavar="F", help="enlarge by F (A1111's Hires upscale)")
    size.add_argument(
        "--hires-size",
        metavar="WxH",
        help="enlarge to W x H, cropping to keep the aspect; 0 on one side follows the other (Hires resize)",
    )
    group.add_argument(
        "--hires-steps", type=int, default=0, metavar="N", help="second-pass steps (0: as --steps)"
    )
    group.add_argument(
        "--hires-strength", type=float, default=0.7, metavar="F", help="denoising strength of the second pass"
    )
    group.add_argument(
        "--hires-upscaler",
        default=DEFAULT_UPSCALER,
        metavar="NAME",
        help=f"{', '.join([*LATENT_MODES, *PIXEL_RESIZES])}, or an upscaler file (a path, or a name "
        "in your upscalers folders)",
    )
    group.add_argument(
        "--hires-sampler", default="", metavar="NAME", help="second-pass sampler (default: --sampler)"
    )
    group.add_argument("--hires-prompt", default="", help="second-pass prompt (default: --prompt)")
    group.add_argument(
        "--hires-negative", default="", help="second-pass negative prompt (default: --negative)"
    )
    group.add_argument("--hires-cfg", type=float, metavar="F", help="second-pass CFG scale (default: --cfg)")


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if match is None:
        raise CliError(f"--hires-size wants WIDTHxHEIGHT, such as 1024x1024 (got {text!r})", status=2)
    return int(match[1]), int(match[2])


def hires_argument(args: argparse.Namespace) -> HiresFix | None:
    """The request's hires fix from the command line, or None; raises CliError with a sentence."""
    if args.hires_scale is None and args.hires_size is None:
        given = [name for name in TUNING if getattr(args, name) != TUNING_DEFAULTS.get(name, "")]
        if args.hires_cfg is not None:
            given.append("hires_cfg")
        if given:
            option = "--" + given[0].replace("_", "-")
            raise CliError(
                f"{option} needs --hires-scale or --hires-size (which turn hires fix on)", status=2
            )
        return None
    from ldm_studio.engine.samplers import sampler_names

    if args.hires_sampler and args.hires_sampler not in sampler_names():
        raise CliError(
            f"--hires-sampler {args.hires_sampler!r} is not a sampler; choose one of "
            f"{', '.join(sampler_names())}",
            status=2,
        )
    try:
        return HiresFix(
            scale=args.hires_scale if args.hires_scale is not None else 2.0,
            resize=parse_size(args.hires_size) if args.hires_size is not None else None,
            steps=args.hires_steps,
            strength=args.hires_strength,
            upscaler=args.hires_upscaler,
            sampler=args.hires_sampler,
            prompt=args.hires_prompt,
            negative_prompt=args.hires_negative,
            guidance=args.hires_cfg,
        )
    except ValueError as error:
        raise CliError(str(error), status=2) from error
