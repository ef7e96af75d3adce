"""``ldm-studio upscale IMAGE --upscaler NAME_OR_PATH [--scale N] --out DIR``: enlarge one image.

The PNG written keeps every text chunk of the source (so its generation parameters still read
back) and adds what was done: A1111's ``postprocessing`` line, and in our own chunk the parent
file, the upscaler and the scale (``gallery.upscaled``, shared with the gallery's Upscale…).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ldm_studio.cli import CliError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("upscale", help="enlarge an image with an upscaler model or Lanczos")
    parser.add_argument("image", type=Path, help="the image to enlarge (PNG, JPEG, WebP…)")
    parser.add_argument(
        "--upscaler",
        required=True,
        help="Lanczos, Bicubic, Nearest, an upscaler file (.pth/.safetensors) or a name from the library",
    )
    parser.add_argument(
        "--scale", type=float, default=None, help="factor (default: the upscaler's own, or 2)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the PNG into")
    parser.add_argument("--tile", type=int, default=None, help="tile size in source pixels (default 192)")
    parser.add_argument(
        "--overlap", type=int, default=None, help="tile overlap in source pixels (default 24)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps… (default cpu)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from PIL import Image, UnidentifiedImageError

    from ldm_studio.cli.progress import ProgressBar
    from ldm_studio.engine.errors import ModelLoadError
    from ldm_studio.engine.upscalers import DEFAULT_OVERLAP, DEFAULT_TILE, PixelResize, find_upscaler, upscale
    from ldm_studio.gallery.upscaled import upscaled_file_name, upscaled_png_bytes

    source: Path = args.image.expanduser()
    try:
        image = Image.open(source)
        image.load()
    except FileNotFoundError as error:
        raise CliError(f"{source} does not exist") from error
    except (UnidentifiedImageError, OSError) as error:
        raise CliError(f"{source.name} is not an image this app can read ({error})") from error
    try:
        upscaler = find_upscaler(args.upscaler, device=args.device)
    except ModelLoadError as error:
        raise CliError(str(error)) from error
    scale = (
        args.scale
        if args.scale is not None
        else (2.0 if isinstance(upscaler, PixelResize) else upscaler.scale)
    )
    if scale <= 0:
        raise CliError(f"--scale must be positive (got {scale})")
    bar, started = ProgressBar(), time.monotonic()
    try:
        result = upscale(
            image,
            upscaler,
            scale,
            tile=args.tile or DEFAULT_TILE,
            overlap=DEFAULT_OVERLAP if args.overlap is None else args.overlap,
            on_progress=lambda done, total: bar.update(done, total, time.monotonic() - started, "tiles "),
        )
    except ValueError as error:
        raise CliError(str(error)) from error
    finally:
        bar.close()
    target = _free_name(args.out.expanduser(), upscaled_file_name(source, upscaler.name, scale))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(upscaled_png_bytes(result, image, source, upscaler.name, scale))
    except OSError as error:
        raise CliError(f"cannot write {target}: {error.strerror or error}") from error
    print(target)
    return 0


def _free_name(folder: Path, name: str) -> Path:
    candidate, stem, n = folder / name, Path(name).stem, 1
    while candidate.exists():
        candidate, n = folder / f"{stem}-{n}.png", n + 1
    return candidate
