"""``ldm-studio prompt TEXT``: what a prompt does, read the A1111 way, as one JSON object.

Shows the LoRA and other extra-network tags, the AND parts, each part's schedule (prompt editing and
alternation), and for every scheduled text its emphasis pieces (text, weight) and tokens per chunk.
With ``--model`` the model's own tokenizer counts; without it, the bundled CLIP tokenizer (SD 1.x, 2.x
and SDXL all share its vocabulary).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ldm_studio.cli import CliError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prompt", help="show how a prompt is parsed, weighted and chunked (A1111 syntax)"
    )
    parser.add_argument("text", help="the prompt")
    parser.add_argument("--model", type=Path, help="diffusers model folder whose tokenizer counts the tokens")
    parser.add_argument(
        "--steps", type=int, default=20, help="sampling steps, for prompt editing (default 20)"
    )
    parser.add_argument("--negative", action="store_true", help="read TEXT as a negative prompt")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ldm_studio.engine.prompts import PromptError

    tokenizer = load_prompt_tokenizer(args.model)
    try:
        report = describe_prompt(args.text, tokenizer, steps=args.steps, negative=args.negative)
    except PromptError as error:
        raise CliError(str(error)) from error
    print(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


def describe_prompt(text: str, tokenizer: Any, *, steps: int, negative: bool = False) -> dict[str, Any]:
    from ldm_studio.engine.prompts import (
        PromptTokenizer,
        count_tokens,
        parse_prompt,
        parse_prompt_attention,
        tokenize_prompt,
    )

    vocab = PromptTokenizer.of(tokenizer)
    parsed = parse_prompt(text, steps, negative=negative)
    parts = []
    for part in parsed.parts:
        schedule = []
        for entry in part.schedule:
            pieces = parse_prompt_attention(entry.text)
            chunks, count = tokenize_prompt(vocab, entry.text)
            schedule.append(
                {
                    "until_step": entry.until_step,
                    "text": entry.text,
                    "chunks": [{"text": piece.text, "weight": piece.weight} for piece in pieces],
                    "tokens_per_chunk": [chunk.used for chunk in chunks],
                    "token_count": f"{count}/{vocab.target_token_count(count)}",
                }
            )
        parts.append({"text": part.text, "weight": part.weight, "schedule": schedule})
    networks = [
        {"kind": tag.kind, "name": tag.name, "arguments": list(tag.positional[1:]), "tag": tag.text}
        | (
            {"te_weight": tag.te_weight, "unet_weight": tag.unet_weight}
            if tag.kind in ("lora", "lyco")
            else {}
        )
        for tag in parsed.networks
    ]
    return {
        "prompt": text,
        "chunk_length": vocab.chunk_length,
        "token_count": str(count_tokens(vocab, text, steps=steps, negative=negative)),
        "networks": networks,
        "parts": parts,
        "unsupported": parsed.unsupported,
    }


def load_prompt_tokenizer(model: Path | None) -> Any:
    """The tokenizer of a diffusers folder (or a bundled model's name), else the bundled CLIP tokenizer."""
    from ldm_studio.paths import resource

    if model is None:
        return bundled_clip_tokenizer()
    folder = model.expanduser()
    if not folder.exists() and (resource("models") / str(model)).is_dir():
        folder = resource("models") / str(model)
    if not (folder / "tokenizer").is_dir():
        raise CliError(f"{model} is not a diffusers model folder with a tokenizer/ folder")
    from transformers import AutoTokenizer

    import ldm_studio.engine  # noqa: F401  (pins the Hugging Face libraries offline)

    try:
        return AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
    except (OSError, ValueError) as error:
        raise CliError(f"cannot read the tokenizer of {model}: {error}") from error


def bundled_clip_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    import ldm_studio.engine  # noqa: F401
    from ldm_studio.paths import resource

    folder = resource("tokenizers", "clip")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
