"""``--tiny-decoder PATH``: decode the final image with a tiny autoencoder (TAESD family), a draft.

The file is checked before the model loads (seconds on a CPU), so a wrong path or an encoder half
is a sentence at once; whether it fits the model's latents is checked by the engine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ldm_studio.cli import CliError


def add_decoder_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tiny-decoder",
        type=Path,
        metavar="PATH",
        help="decode the final image with this tiny autoencoder (taesd_decoder.pth / .safetensors or a "
        "diffusers AutoencoderTiny folder): a fast draft, recorded in the metadata (default: the VAE)",
    )


def decoder_argument(args: argparse.Namespace) -> str:
    """The request's ``decoder``: "" for the model's VAE, else the checked path of a tiny decoder."""
    path = getattr(args, "tiny_decoder", None)
    if path is None:
        return ""
    if not path.exists():
        raise CliError(f"--tiny-decoder {path} does not exist", status=2)
    from ldm_studio.engine.tiny_autoencoder import describe_tiny_autoencoder

    info = describe_tiny_autoencoder(path)
    if info.problem:
        raise CliError(f"--tiny-decoder: {info.problem}", status=2)
    if not info.has_decoder:
        raise CliError(f"--tiny-decoder {path.name} holds only an encoder: give its decoder file", status=2)
    return str(path)
