"""``ldm-studio models``: list the model library (the models folder, added folders, bundled models)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ldm_studio.cli import CliError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the models LDM Studio can find")
    parser.add_argument("--add", type=Path, metavar="DIR", help="add a folder to the library and list")
    parser.add_argument(
        "--remove", type=Path, metavar="DIR", help="remove a folder from the library and list"
    )
    parser.add_argument("--no-hash", action="store_true", help="skip hashing files not hashed before")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ldm_studio.engine.catalog import CHECKPOINT_SUFFIXES
    from ldm_studio.engine.errors import ModelLoadError
    from ldm_studio.engine.library import ModelLibrary, add_model_folder, entry_to_dict, remove_model_folder

    try:
        if args.add:
            add_model_folder(args.add)
        if args.remove:
            remove_model_folder(args.remove)
    except ModelLoadError as error:
        raise CliError(str(error)) from error
    library = ModelLibrary.default()
    entries = library.scan(with_hashes=not args.no_hash)
    if args.json:
        print(json.dumps([entry_to_dict(entry) for entry in entries], indent=1))
        return 0
    print("Folders: " + ", ".join(str(folder) for folder in library.folders))
    if not entries:
        suffixes = "/".join(CHECKPOINT_SUFFIXES)
        print(f"No models found. Put {suffixes} files or diffusers folders in a folder above.")
        return 0
    print(_table(entries))
    return 0


def _table(entries: list) -> str:  # list[ModelEntry], imported lazily
    from ldm_studio.engine.catalog import human_size

    rows = [("NAME", "FAMILY", "TYPE", "SIZE", "HASH", "STATUS")]
    for entry in entries:
        status = "ok" if entry.loadable else f"cannot load: {entry.reason}"
        name = entry.name + (" (bundled)" if entry.bundled else "")
        rows.append(
            (name, entry.family, entry.file_type, human_size(entry.size), entry.short_hash or "-", status)
        )
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)) + "  " + row[5]
        for row in rows
    )
