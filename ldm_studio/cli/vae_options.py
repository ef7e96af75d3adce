"""``generate``'s options for large and seamless images: ``--tiled-vae`` and ``--tiling``."""

from __future__ import annotations

import argparse
from typing import Any

from ldm_studio.engine.vae_tiling import TILED_VAE_KEY, TILED_VAE_MODES


def add_vae_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("large and seamless images")
    group.add_argument(
        "--tiled-vae",
        choices=TILED_VAE_MODES,
        default="auto",
        help="decode/encode tile by tile: auto (when the image would not fit in free memory), "
        "always, or never (default: auto)",
    )
    group.add_argument(
        "--tiling",
        action="store_true",
        help="seamless: the image repeats without a seam when tiled (A1111's Tiling)",
    )


def vae_extras(args: argparse.Namespace) -> dict[str, Any]:
    """The request extras these options set (nothing for the default, so requests stay as they were)."""
    mode = getattr(args, "tiled_vae", "auto")
    return {} if mode == "auto" else {TILED_VAE_KEY: mode}
