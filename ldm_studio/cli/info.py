"""``ldm-studio info PATH``: what a checkpoint or model folder is, and whether LDM Studio can open it.

Exit status 0 when it can load, 2 (with the reason) when it cannot.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ldm_studio.cli import CliError
from ldm_studio.cli.schedule_options import few_step_line
from ldm_studio.engine.checkpoints.info import FLOW_FAMILIES

NOT_LOADABLE_STATUS = 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info", help="describe a checkpoint file or model folder without loading it"
    )
    parser.add_argument("path", type=Path, help=".safetensors / .gguf / .ckpt file or diffusers model folder")
    parser.add_argument("--no-hash", action="store_true", help="skip the SHA-256 (slow for big files)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument(
        "--set-prediction",
        choices=("epsilon", "v_prediction", "auto"),
        help="remember what this model predicts (auto: forget the choice and guess again)",
    )
    parser.add_argument(
        "--convert", action="store_true", help="write a .safetensors copy of a .ckpt next to it"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ldm_studio.engine.checkpoints import convert_ckpt_to_safetensors, inspect_model, set_model_settings
    from ldm_studio.engine.errors import ModelLoadError

    path: Path = args.path.expanduser()
    try:
        if args.set_prediction:
            choice = None if args.set_prediction == "auto" else args.set_prediction
            set_model_settings(path, prediction_type=choice)
        info = inspect_model(path)
        if args.convert:
            if info.file_type != "ckpt":
                raise CliError(f"{path.name} is not a pickled checkpoint; nothing to convert")
            converted = convert_ckpt_to_safetensors(path)
            print(f"wrote {converted}")
    except ModelLoadError as error:
        raise CliError(str(error), status=NOT_LOADABLE_STATUS) from error
    model_hash = "" if args.no_hash else _short_hash(path)
    if args.json:
        print(json.dumps(_as_dict(info, model_hash), indent=1))
    else:
        print("\n".join(_describe(info, model_hash)))
    if not info.loadable:
        raise CliError(f"cannot load {path.name}: {info.reason}", status=NOT_LOADABLE_STATUS)
    return 0


def _short_hash(path: Path) -> str:
    from ldm_studio.engine.library import short_hash

    try:
        return short_hash(path)
    except OSError as error:
        raise CliError(f"cannot read {path.name}: {error.strerror or error}") from error


def _describe(info, model_hash: str) -> list[str]:  # noqa: ANN001 - ModelInfo, imported lazily
    from ldm_studio.engine.catalog import human_size
    from ldm_studio.engine.checkpoints.inspect import human_count

    lines = [
        f"Path:        {info.path}",
        f"Type:        {info.file_type}, {human_size(info.file_size)}"
        + (f", weights stored as {info.weight_dtype}" if info.weight_dtype else ""),
        f"Family:      {info.family_label} ({info.family})",
    ]
    if info.unet is not None:
        lines.append(f"Prediction:  {info.prediction_type} (from {info.prediction_source})")
        lines.append(f"Native size: {info.native_size} px")
        if few_step := few_step_line(Path(info.path)):  # a distilled model and its authors' settings
            lines.append(f"Few-step:    {few_step}")
    if model_hash:
        kind = "AutoV2" if info.file_type != "diffusers" else "SHA-256 over all its files"
        lines.append(f"Hash:        {model_hash} ({kind})")
    if info.parameters:
        parts = ", ".join(f"{name} {human_count(count)}" for name, count in info.parameters.items())
        lines.append(f"Parameters:  {human_count(info.parameter_count)} ({parts})")
    if info.stored_bytes:  # a quantised transformer (GGUF) stays as stored in either precision
        lines.append(
            f"Memory:      ~{human_size(info.memory_estimate(4))} with the other parts in fp32, "
            f"~{human_size(info.memory_estimate(2))} in fp16/bf16 (weights +20 %)"
        )
    elif info.family in FLOW_FAMILIES:  # every part found, counted as for a .gguf
        lines.append(
            f"Memory:      ~{human_size(info.memory_estimate(4))} in fp32, "
            f"~{human_size(info.memory_estimate(2))} in fp16/bf16 (the parts found, weights +20 %)"
        )
    if info.unet is not None:
        lines.append(
            f"Memory:      ~{human_size(info.memory_estimate(4))} in fp32, "
            f"~{human_size(info.memory_estimate(2))} in fp16/bf16 (one image at native size)"
        )
    lines.extend(f"Layout:      {line}" for line in info.layout_lines())
    lines.extend(f"Note:        {note}" for note in info.notes)
    lines.append(f"Loadable:    {'yes' if info.loadable else 'no: ' + info.reason}")
    return lines


def _as_dict(info, model_hash: str) -> dict:  # noqa: ANN001
    from dataclasses import asdict

    data = asdict(info)
    data.update(
        path=str(info.path),
        short_hash=model_hash,
        family_label=info.family_label,
        memory_bytes_fp32=info.memory_estimate(4),
        memory_bytes_fp16=info.memory_estimate(2),
    )
    return data
