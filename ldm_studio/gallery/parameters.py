"""The AUTOMATIC1111 ``parameters`` text: the de-facto standard other tools read and write.

Layout::

    {prompt, possibly several lines}
    Negative prompt: {negative, possibly several lines}      (left out when empty)
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b, Model: m

Values that hold ``,`` ``:`` or a newline are JSON-quoted, so the settings always fit on the last line
and the prompt lines above it are stored verbatim. One ambiguity is inherent in the format: a prompt
with a line that itself starts with ``Negative prompt:`` cannot be told apart from a negative prompt.
Our own JSON chunk (see ``metadata.py``) is exact in every case.
"""

from __future__ import annotations

import json
from typing import Any

from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.samplers import a1111_settings
from ldm_studio.gallery.hires_metadata import hires_settings
from ldm_studio.gallery.networks import (
    CLIP_SKIP_KEY,
    LORA_HASHES_KEY,
    TI_HASHES_KEY,
    a1111_network_settings,
    parse_hashes,
    refs_from_record,
)

# Our record's lists of LoRAs and embeddings: written as A1111's hash lists, not as raw values.
NETWORK_RECORD_KEYS = ("loras", "embeddings")

NEGATIVE_PREFIX = "Negative prompt:"

# A1111 keys we map onto typed fields; every other key lands in ``extra`` as a string.
_TYPED_KEYS = {
    "Steps": "steps",
    "Sampler": "sampler",
    "CFG scale": "guidance",
    "Seed": "seed",
    "Model hash": "model_hash",
    "Model": "model_name",
}


def quote(value: str) -> str:
    """JSON-quote a value when it would otherwise break the ``key: value, ...`` line."""
    # Beyond A1111's rule (``,`` ``:`` newline) we also quote values that start with a quote or carry
    # surrounding whitespace, which an unquoted value would lose; A1111 reads both back the same way.
    if (
        any(mark in value for mark in (",", ":", "\n", "\r"))
        or value.startswith('"')
        or value != value.strip()
    ):
        return json.dumps(value, ensure_ascii=False)
    return value


def format_number(value: float) -> str:
    """Shortest exact text for a float (``7`` not ``7.0``); ``float(text)`` gives it back."""
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def format_parameters(
    request: GenerationRequest,
    *,
    model_name: str,
    model_hash: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """The A1111 ``parameters`` text for one image made from ``request`` (seed and size resolved)."""
    settings: dict[str, str] = {
        "Steps": str(request.steps),
        "Sampler": request.sampler,
        # A1111 1.9+ writes the schedule type right after the sampler (left out when Automatic)
        **a1111_settings(request.sampler, request.schedule, request.extras),
        "CFG scale": format_number(request.guidance),
    }
    if "Distilled CFG Scale" in (extra or {}):  # FLUX dev as Forge writes it: no CFG, a guidance input
        settings["CFG scale"] = "1"
    if request.seed is not None:
        settings["Seed"] = str(request.seed)
    if request.width is not None and request.height is not None:
        settings["Size"] = f"{request.width}x{request.height}"
    if model_hash:
        settings["Model hash"] = model_hash
    if model_name:
        settings["Model"] = model_name
    if request.init_image:
        settings["Denoising strength"] = format_number(request.strength)
    settings.update(hires_settings(request))  # A1111's Denoising strength + Hires …
    if request.tiling:
        settings["Tiling"] = "True"  # A1111 writes it only when on
    extra = extra or {}
    settings.update(
        a1111_network_settings(
            request.clip_skip,
            refs_from_record(extra.get("loras"), "lora"),
            refs_from_record(extra.get("embeddings"), "embedding"),
        )
    )
    for key, value in extra.items():
        if key in NETWORK_RECORD_KEYS or isinstance(value, (list, tuple, dict)):
            continue  # structured records (LoRA lists, notices) live in our JSON chunk only
        settings[str(key)] = format_number(value) if isinstance(value, float) else str(value)
    settings_line = ", ".join(f"{key}: {quote(value)}" for key, value in settings.items())
    negative = f"\n{NEGATIVE_PREFIX} {request.negative_prompt}" if request.negative_prompt else ""
    return f"{request.prompt}{negative}\n{settings_line}"


def _read_quoted(text: str, start: int) -> tuple[str, int] | None:
    """The JSON string starting at ``text[start] == '"'`` and the index after it, or None."""
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == '"':
            try:
                return json.loads(text[start : index + 1]), index + 1
            except ValueError:
                return None
        index += 1
    return None


def parse_settings_line(line: str) -> dict[str, str]:
    """``Steps: 20, Sampler: "a, b", Flag`` → ``{"Steps": "20", "Sampler": "a, b", "Flag": "Flag"}``."""
    settings: dict[str, str] = {}
    position = 0
    while position < len(line):
        while position < len(line) and line[position] in " \t,":
            position += 1
        if position >= len(line):
            break
        colon = line.find(":", position)
        comma = line.find(",", position)
        if colon == -1 or (comma != -1 and comma < colon):
            # A bare flag (A1111 writes ``key`` alone when key == value).
            end = len(line) if comma == -1 else comma
            flag = line[position:end].strip()
            if flag:
                settings[flag] = flag
            position = end + 1
            continue
        key = line[position:colon].strip()
        position = colon + 1
        while position < len(line) and line[position] == " ":
            position += 1
        quoted = _read_quoted(line, position) if line[position : position + 1] == '"' else None
        if quoted is not None:
            value, position = quoted
        else:
            end = line.find(",", position)
            end = len(line) if end == -1 else end
            value = line[position:end].strip()
            position = end
        settings[key] = value
        position += 1  # the comma
    return settings


def _looks_like_settings(line: str) -> bool:
    settings = parse_settings_line(line)
    return "Steps" in settings or sum(1 for key, value in settings.items() if key != value) >= 3


def _to_int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _to_float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def parse_parameters(text: str) -> dict[str, Any]:
    """Inverse of :func:`format_parameters`; also reads text written by A1111 and its forks.

    Returns ``prompt``, ``negative_prompt`` and, where present, ``steps`` (int), ``sampler``,
    ``guidance`` (float), ``seed`` (int), ``width``/``height`` (int), ``model_hash``, ``model_name``,
    ``denoising_strength`` (float), ``clip_skip`` (int), ``loras`` / ``embeddings`` (NetworkRef tuples
    from ``Lora hashes`` / ``TI hashes``); ``extra`` holds every other setting as a string.
    """
    lines = text.split("\n")
    settings: dict[str, str] = {}
    if len(lines) > 1 and _looks_like_settings(lines[-1]):
        settings = parse_settings_line(lines.pop())
    elif len(lines) == 1 and _looks_like_settings(lines[0]) and "Steps" in parse_settings_line(lines[0]):
        settings = parse_settings_line(lines.pop())  # settings only, no prompt line at all

    negative_at = next((i for i, line in enumerate(lines) if line.startswith(NEGATIVE_PREFIX)), None)
    prompt_lines = lines if negative_at is None else lines[:negative_at]
    negative = ""
    if negative_at is not None:
        first = lines[negative_at][len(NEGATIVE_PREFIX) :]
        first = first[1:] if first.startswith(" ") else first
        negative = "\n".join([first, *lines[negative_at + 1 :]])

    result: dict[str, Any] = {"prompt": "\n".join(prompt_lines), "negative_prompt": negative}
    extra: dict[str, str] = {}
    for key, value in settings.items():
        field = _TYPED_KEYS.get(key)
        if field in ("steps", "seed"):
            number = _to_int(value)
            if number is not None:
                result[field] = number
                continue
        elif field == "guidance":
            number = _to_float(value)
            if number is not None:
                result[field] = number
                continue
        elif field is not None:
            result[field] = value
            continue
        elif key == "Size":
            width, _, height = value.partition("x")
            if _to_int(width) is not None and _to_int(height) is not None:
                result["width"], result["height"] = int(width), int(height)
                continue
        elif key == "Denoising strength" and _to_float(value) is not None:
            result["denoising_strength"] = float(value)
            continue
        # These stay in ``extra`` too, as written: the viewer shows them the way A1111 does.
        elif key == CLIP_SKIP_KEY and (_to_int(value) or 0) >= 1:
            result["clip_skip"] = int(value)
        elif key == LORA_HASHES_KEY:
            result["loras"] = parse_hashes(value, "lora")
        elif key == TI_HASHES_KEY:
            result["embeddings"] = parse_hashes(value, "embedding")
        extra[key] = value
    if _to_float(extra.get("Distilled CFG Scale")) is not None:  # Forge's FLUX dev: the guidance input
        result["guidance"] = float(extra["Distilled CFG Scale"])
    result["extra"] = extra
    return result
