"""Command line: ``ldm-studio`` opens the window; subcommands work without Qt.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``, which registers its
arguments and sets ``run(args) -> int``. Heavy imports (torch, diffusers) happen inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ldm_studio import __version__

# module name under ldm_studio.cli -> subcommands it registers
SUBCOMMAND_MODULES = ("generate", "info", "models", "data", "train", "walk", "prompt", "upscale")


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1 (or ``status``)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ldm-studio",
        description="LDM Studio: generate images with latent diffusion models. "
        "Without a subcommand it opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"LDM Studio {__version__}")
    parser.add_argument("--model", help="model folder or checkpoint file to open in the window")
    parser.add_argument(
        "--install-desktop-entry", action="store_true", help="install the .desktop file and icons"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"ldm_studio.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"ldm_studio.cli.{name}":
                continue  # subcommand not built yet
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            if args.install_desktop_entry:
                return _install_desktop_entry()
            from ldm_studio.ui.launch import run_window

            return run_window(model=args.model)
        return int(args.run(args) or 0)
    except CliError as error:
        print(f"ldm-studio: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        print("ldm-studio: interrupted", file=sys.stderr)
        return 130


def _install_desktop_entry() -> int:
    from ldm_studio.desktop import DesktopEntryError, install_desktop_entry

    try:
        return install_desktop_entry()
    except DesktopEntryError as error:
        raise CliError(str(error)) from error
