"""``ldm-studio data emoji --out DIR``: write the captioned emoji image folder the bundled model trains on."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from ldm_studio.cli import CliError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="build training datasets")
    datasets = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    emoji = datasets.add_parser(
        "emoji",
        help="Twemoji and Noto emoji (fetched with npm pack) as a captioned image folder",
    )
    emoji.add_argument("--out", type=Path, required=True, help="folder to write the images and captions to")
    emoji.add_argument("--size", type=int, default=64, help="image size in pixels (default 64)")
    emoji.add_argument(
        "--package-cache",
        type=Path,
        default=None,
        help="where the npm tarballs are kept (default: the user cache folder)",
    )
    emoji.add_argument("--skin-tones", action="store_true", help="also write the skin-tone variants")
    emoji.add_argument("--flags", action="store_true", help="also write the flag emoji")
    emoji.add_argument(
        "--holdout", type=float, default=0.05, help="fraction of emoji listed in holdout.txt (default 0.05)"
    )
    emoji.set_defaults(run=run_emoji)
    openmoji = datasets.add_parser(
        "openmoji", help="OpenMoji (CC-BY-SA 4.0, fetched with npm pack) as a captioned image folder"
    )
    openmoji.add_argument(
        "--out", type=Path, required=True, help="folder to write the images and captions to"
    )
    openmoji.add_argument("--size", type=int, default=32, help="image size in pixels (default 32)")
    openmoji.add_argument("--package-cache", type=Path, default=None, help="where the npm tarball is kept")
    openmoji.add_argument(
        "--holdout", type=float, default=0.1, help="fraction of emoji listed in holdout.txt (default 0.1)"
    )
    openmoji.set_defaults(run=run_openmoji)


def run_openmoji(args: argparse.Namespace) -> int:
    from ldm_studio.paths import user_dirs
    from ldm_studio.training import emoji_data, openmoji_data

    cache_dir = args.package_cache or user_dirs().cache / "npm"
    try:
        tarball = emoji_data.fetch_package(
            openmoji_data.OPENMOJI_PACKAGE, openmoji_data.OPENMOJI_VERSION, cache_dir
        )
        count = openmoji_data.write_openmoji_folder(
            tarball, args.out, size=args.size, holdout_fraction=args.holdout
        )
    except (emoji_data.NpmMissingError, openmoji_data.SvgRendererMissingError) as error:
        raise CliError(str(error)) from error
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise CliError(f"npm pack failed ({detail[0]}); check the network or the npm registry") from error
    print(f"wrote {count} images with captions to {args.out}")
    return 0


def run_emoji(args: argparse.Namespace) -> int:
    from ldm_studio.paths import user_dirs
    from ldm_studio.training import emoji_data

    cache_dir = args.package_cache or user_dirs().cache / "npm"
    tarballs = {}
    try:
        for package, version in emoji_data.PACKAGE_VERSIONS.items():
            tarballs[package] = emoji_data.fetch_package(package, version, cache_dir)
    except emoji_data.NpmMissingError as error:
        raise CliError(str(error)) from error
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise CliError(f"npm pack failed ({detail[0]}); check the network or the npm registry") from error
    count = emoji_data.write_emoji_folder(
        tarballs,
        args.out,
        size=args.size,
        holdout_fraction=args.holdout,
        include_skin_tones=args.skin_tones,
        include_flags=args.flags,
    )
    print(f"wrote {count} images with captions to {args.out}")
    return 0
