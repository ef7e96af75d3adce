"""``--outpaint left=128,right=128``: extend ``--init-image``'s canvas and inpaint the new area.

The output is the source's size (floored to 8) plus the sides unless ``--width``/``--height`` say
otherwise; then the source is fitted into what is left of that size after the sides.
"""

from __future__ import annotations

import argparse

from ldm_studio.cli import CliError
from ldm_studio.engine.outpaint import FILLS, Outpaint


def add_outpaint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--outpaint",
        metavar="SPEC",
        help="extend --init-image and paint the new area: left=128,right=128 (also top, bottom, all), "
        f"or aspect=16:9; add fill={'|'.join(FILLS)} (default {FILLS[0]}) or feather=PX to the seam",
    )


def outpaint_argument(args: argparse.Namespace) -> Outpaint | None:
    """The request's outpaint from the command line, or None; raises CliError with a sentence."""
    if args.outpaint is None:
        return None
    if not args.init_image:
        raise CliError("--outpaint needs --init-image (the picture to extend)", status=2)
    try:
        return Outpaint.parse(args.outpaint, source_size(args))
    except ValueError as error:
        raise CliError(f"--outpaint: {error}", status=2) from error


def outpaint_size(args: argparse.Namespace, outpaint: Outpaint | None) -> tuple[int | None, int | None]:
    """--width/--height as given, or for an outpaint without them the extended source's size."""
    if outpaint is None or args.width is not None or args.height is not None:
        return args.width, args.height
    return outpaint.canvas_for(source_size(args))


def source_size(args: argparse.Namespace) -> tuple[int, int]:
    from PIL import Image, ImageOps

    try:
        with Image.open(args.init_image) as image:
            return ImageOps.exif_transpose(image).size
    except FileNotFoundError as error:
        raise CliError(f"--init-image {args.init_image} does not exist", status=2) from error
    except OSError as error:
        raise CliError(
            f"--init-image {args.init_image} is not an image that can be read ({error})"
        ) from error
