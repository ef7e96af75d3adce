"""``--lora``, ``--embedding`` and ``--clip-skip``: what the command line adds to A1111's prompt syntax.

``--lora fox_style:0.8`` is the tag ``<lora:fox_style:0.8>`` appended to the prompt; ``--lora
path/to/fox.safetensors:0.8`` also makes that file usable by its name without a library folder, and
``--embedding path/to/emb.pt`` does the same for an embedding (its file name triggers it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ldm_studio.cli import CliError
from ldm_studio.engine.catalog import EMBEDDING, LORA
from ldm_studio.engine.request import MAX_CLIP_SKIP


def add_network_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("LoRA, embeddings and clip skip (A1111 syntax works in --prompt too)")
    group.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="PATH_OR_NAME[:WEIGHT]",
        help="apply a LoRA (repeatable): a file, or a name in your LoRA folders; weight 1 by default",
    )
    group.add_argument(
        "--embedding",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="make an embedding file usable by its name in the prompt (repeatable)",
    )
    group.add_argument(
        "--clip-skip",
        type=int,
        default=1,
        metavar="N",
        help=f"A1111's clip skip: 1 = last text-encoder layer, 2 = penultimate … {MAX_CLIP_SKIP}",
    )


def split_lora(value: str) -> tuple[str, float]:
    """``name``, ``name:0.8``, ``C:\\loras\\fox.safetensors:0.8`` → (path or name, weight)."""
    head, _, tail = value.rpartition(":")
    if head:
        try:
            return head, float(tail)
        except ValueError:
            pass
    return value, 1.0


def network_arguments(args: argparse.Namespace) -> tuple[str, list[str]]:
    """The prompt with ``--lora`` tags appended, and the files named on the command line."""
    from ldm_studio.gallery.networks import lora_tag

    files: list[str] = []
    tags: list[str] = []
    for value in args.lora:
        target, weight = split_lora(value)
        path = Path(target).expanduser()
        if path.suffix.lower() in LORA.suffixes:
            if not path.is_file():
                raise CliError(f"--lora {path} does not exist", status=2)
            files.append(str(path.resolve()))
            name = path.stem
        else:
            name = target
        tags.append(lora_tag(name, weight))
    for path in args.embedding:
        if not path.is_file() or path.suffix.lower() not in EMBEDDING.suffixes:
            raise CliError(f"--embedding {path} is not an embedding file (.safetensors, .pt, .bin)", status=2)
        files.append(str(path.expanduser().resolve()))
    prompt = args.prompt if not tags else " ".join([args.prompt, *tags]).strip()
    return prompt, files
