"""``--part NAME=PATH``: the separate files a FLUX.1 or SD 3 single file needs (clip_l, clip_g,
t5xxl, ae / vae), and ``tokenizers=FOLDER`` (a diffusers FLUX / SD 3 folder whose tokenizers to use)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_part_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--part",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a part a FLUX.1 or SD 3 single file lacks: clip_l=, clip_g= (SD 3), t5xxl=, ae= / vae= "
        "(files), tokenizers= (a diffusers folder); found beside the model under ComfyUI's names when "
        "not given",
    )
    parser.add_argument(
        "--skip-memory-check",
        action="store_true",
        help="load an SD 3 / FLUX model even when its memory estimate exceeds what is free",
    )


def part_arguments(args: argparse.Namespace) -> dict[str, Path]:
    """``{part: path}`` from the ``--part`` options; ValueError with a sentence for a bad one."""
    from ldm_studio.engine.checkpoints.flow_parts import part_name

    parts = {}
    for option in getattr(args, "part", None) or []:
        name, separator, path = option.partition("=")
        if not separator or not path:
            raise ValueError(f"--part takes NAME=PATH (for example ae=ae.safetensors), got {option!r}")
        parts[part_name(name)] = Path(path).expanduser()
    return parts
