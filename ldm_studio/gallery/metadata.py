"""PNG metadata: write ours (A1111 ``parameters`` + our exact JSON), read ours and other tools'.

Every image we save carries two text chunks:

- ``parameters``: the AUTOMATIC1111 text (``parameters.py``) that other tools and websites read;
- ``ldm-studio``: JSON with the complete request, model name and hash, app version, creation time and
  any extra (parent image, branch step, ...), so the image alone reproduces itself exactly.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image, PngImagePlugin, UnidentifiedImageError

import ldm_studio
from ldm_studio.engine.request import MAX_CLIP_SKIP, MAX_SEED, GenerationRequest
from ldm_studio.engine.samplers import DEFAULT_SCHEDULE, canonical, sampler_extras
from ldm_studio.gallery.comfyui_flow import read_comfyui_graph, read_comfyui_ui_workflow
from ldm_studio.gallery.foreign import normalise_sampler, read_invokeai, split_schedule
from ldm_studio.gallery.hires_metadata import HiresFix, hires_changes, hires_from_a1111, with_comfyui_hires
from ldm_studio.gallery.networks import NetworkRef, refs_from_record, with_lora_tags
from ldm_studio.gallery.parameters import format_parameters, parse_parameters

__all__ = [
    "OUR_CHUNK",
    "ImageMetadata",
    "encode_png",
    "format_parameters",
    "image_request",
    "parse_parameters",
    "read_metadata",
    "split_record",
]

OUR_CHUNK = "ldm-studio"
PARAMETERS_CHUNK = "parameters"
OUR_FORMAT = 1

Source = Literal["ldm-studio", "a1111", "comfyui", "invokeai"] | None
ReuseMode = Literal["all", "prompt", "seed"]


@dataclass(frozen=True)
class ImageMetadata:
    """What an image says about how it was made. Fields the file does not tell are None."""

    prompt: str = ""
    negative_prompt: str = ""
    seed: int | None = None
    steps: int | None = None
    sampler: str | None = None
    schedule: str | None = None  # A1111's "Schedule type" in our names (None: not written)
    guidance: float | None = None
    width: int | None = None  # from the metadata, else the image's own size
    height: int | None = None
    model_name: str | None = None
    model_hash: str | None = None
    clip_skip: int | None = None  # A1111's numbering
    loras: tuple[NetworkRef, ...] = ()  # what the image names: A1111's hashes, ComfyUI's LoraLoader nodes…
    embeddings: tuple[NetworkRef, ...] = ()
    hires: HiresFix | None = None  # A1111's hires fix (our JSON, A1111's Hires keys, ComfyUI's 2 samplers)
    tiling: bool | None = None  # A1111's "Tiling: True" (seamless); absent means off
    source: Source = None
    request: GenerationRequest | None = None  # exact, only in our own images
    created: float | None = None  # epoch seconds, only in our own images
    extra: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)  # every text chunk as found

    def to_request(self, base: GenerationRequest | None = None) -> GenerationRequest:
        """A valid request built from these fields, with ``base`` (or defaults) for the rest."""
        return self.reuse(base or GenerationRequest(prompt=""), "all")

    def reuse(self, base: GenerationRequest, mode: ReuseMode) -> GenerationRequest:
        """``base`` with this image's prompts (``"prompt"``), seed (``"seed"``) or everything (``"all"``).

        ``"prompt"`` brings the negative prompt along: the two are written together. Values another tool
        wrote that our requests cannot hold (a size that is not a multiple of 8, an out-of-range seed)
        are adjusted or left at ``base``'s value rather than failing.
        """
        if mode == "prompt":
            return base.replace(prompt=self.tagged_prompt(), negative_prompt=self.negative_prompt)
        if mode == "seed":
            return base.replace(seed=self.seed) if _valid_seed(self.seed) else base
        if mode != "all":
            raise ValueError(f"unknown reuse mode {mode!r}; use 'all', 'prompt' or 'seed'")
        if self.request is not None:
            return self.request
        changes: dict[str, Any] = {"prompt": self.tagged_prompt(), "negative_prompt": self.negative_prompt}
        if self.clip_skip is not None:
            changes["clip_skip"] = min(max(self.clip_skip, 1), MAX_CLIP_SKIP)
        if _valid_seed(self.seed):
            changes["seed"] = self.seed
        if self.steps is not None and self.steps >= 1:
            changes["steps"] = self.steps
        if self.guidance is not None and math.isfinite(self.guidance):
            changes["guidance"] = self.guidance
        if self.sampler:
            changes["sampler"] = self.sampler
            changes["schedule"] = self.schedule or DEFAULT_SCHEDULE
            changes.update(sampler_extras(self.extra, base.extras))
        changes.update(hires_changes(self.hires, base))  # off when the image had none, as A1111 pastes
        changes["tiling"] = bool(self.tiling)  # likewise: the image is reproduced as it was made
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and value >= 8:
                changes[name] = value - value % 8
        return base.replace(**changes)

    def tagged_prompt(self) -> str:
        """The prompt as our engine reads it: tools that wire LoRAs outside the text get A1111 tags."""
        if self.source in ("comfyui", "invokeai"):
            return with_lora_tags(self.prompt, self.loras)
        return self.prompt


def _valid_seed(seed: int | None) -> bool:
    return seed is not None and 0 <= seed <= MAX_SEED


def split_record(record: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """A finished generation's record as the PNG writer takes it: model name, model hash, the rest."""
    extra = {key: value for key, value in record.items() if key not in ("model_name", "model_hash")}
    return str(record.get("model_name", "")), str(record.get("model_hash", "")), extra


def image_request(request: GenerationRequest, index: int) -> GenerationRequest:
    """The request that reproduces image ``index`` of a batch on its own: seed + index, batch of one."""
    return request.replace(seed=request.seed_for(index), batch_size=1)


def our_chunk_json(
    request: GenerationRequest,
    *,
    model_name: str,
    model_hash: str,
    extra: dict[str, Any] | None = None,
    created: float | None = None,
) -> str:
    record = {
        "format": OUR_FORMAT,
        "app": ldm_studio.APP_NAME,
        "app_version": ldm_studio.__version__,
        "created": time.time() if created is None else created,
        "model_name": model_name,
        "model_hash": model_hash,
        "request": request.to_dict(),
        "extra": extra or {},
    }
    # default=str: an extra holding a Path or similar must not stop the image from being saved.
    return json.dumps(record, ensure_ascii=False, default=str)


def encode_png(
    image: Image.Image,
    request: GenerationRequest,
    *,
    model_name: str,
    model_hash: str,
    extra: dict[str, Any] | None = None,
    created: float | None = None,
) -> bytes:
    """The PNG file for ``image`` with both metadata chunks, as bytes (the caller writes them)."""
    info = PngImagePlugin.PngInfo()
    # add_text switches to a UTF-8 iTXt chunk by itself when the text is not Latin-1, as A1111 does.
    info.add_text(
        PARAMETERS_CHUNK,
        format_parameters(request, model_name=model_name, model_hash=model_hash, extra=extra),
    )
    chunk = our_chunk_json(
        request, model_name=model_name, model_hash=model_hash, extra=extra, created=created
    )
    info.add_itxt(OUR_CHUNK, chunk, zip=len(chunk) > 1024)
    if image.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _text_chunks(image: Image.Image) -> dict[str, str]:
    chunks = {key: str(value) for key, value in image.info.items() if isinstance(value, str)}
    if image.format == "PNG" and not chunks.keys() & KNOWN_KEYS:
        # Text chunks after the image data only show up once the pixels are read; only pay for
        # that when the header gave us nothing to go on.
        # A truncated file fails here: keep what the header told us.
        with contextlib.suppress(OSError, ValueError, SyntaxError, EOFError):
            chunks.update({key: str(value) for key, value in image.text.items()})
    return chunks


KNOWN_KEYS = {OUR_CHUNK, PARAMETERS_CHUNK, "prompt", "workflow", "invokeai_metadata", "sd-metadata"}


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _from_ours(text: str | None) -> dict[str, Any] | None:
    record = _json(text)
    if not isinstance(record, dict) or not isinstance(record.get("request"), dict):
        return None
    try:
        request = GenerationRequest.from_dict(record["request"])
    except (TypeError, ValueError):
        return None
    created = record.get("created")
    extra = record.get("extra") if isinstance(record.get("extra"), dict) else {}
    return {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "seed": request.seed,
        "steps": request.steps,
        "sampler": request.sampler,
        "schedule": request.schedule,
        "guidance": request.guidance,
        "width": request.width,
        "height": request.height,
        "model_name": record.get("model_name") or None,
        "model_hash": record.get("model_hash") or None,
        "request": request,
        "created": float(created) if isinstance(created, (int, float)) else None,
        "clip_skip": request.clip_skip,
        "loras": refs_from_record(extra.get("loras"), "lora"),
        "embeddings": refs_from_record(extra.get("embeddings"), "embedding"),
        "hires": request.hires,
        "tiling": request.tiling,
        "extra": extra,
    }


def _from_a1111(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    parsed = parse_parameters(text)
    parsed["hires"] = hires_from_a1111(parsed)
    parsed["tiling"] = parsed["extra"].get("Tiling", "").strip().lower() == "true"
    parsed.pop("denoising_strength", None)
    # A1111 1.9+ writes the sigma schedule apart: "Sampler: DPM++ 2M, Schedule type: Karras";
    # older versions "Sampler: DPM++ 2M Karras" (one of our names as it is).
    sampler, schedule = parsed.get("sampler"), parsed["extra"].get("Schedule type")
    if sampler:
        parsed["sampler"], parsed["schedule"] = canonical(sampler, schedule)
    return parsed


def metadata_from_chunks(chunks: dict[str, str], image_size: tuple[int, int]) -> ImageMetadata:
    """Pick the best source among the chunks: ours, then A1111, ComfyUI, InvokeAI."""
    readers: list[tuple[Source, Any]] = [
        ("ldm-studio", lambda: _from_ours(chunks.get(OUR_CHUNK))),
        ("a1111", lambda: _from_a1111(chunks.get(PARAMETERS_CHUNK))),
        ("comfyui", lambda: with_comfyui_hires(read_comfyui_graph(_json(chunks.get("prompt"))), chunks)),
        ("comfyui", lambda: read_comfyui_ui_workflow(_json(chunks.get("workflow"))) or None),
        ("invokeai", lambda: read_invokeai(_json(chunks.get("invokeai_metadata"))) or None),
        ("invokeai", lambda: read_invokeai(_json(chunks.get("sd-metadata"))) or None),
    ]
    fields: dict[str, Any] = {}
    source: Source = None
    for candidate, read in readers:
        try:
            found = read()
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError):
            found = None  # another tool's chunk we cannot make sense of: the next source, never a crash
        if found:
            fields, source = found, candidate
            break
    known = {name for name in ImageMetadata.__dataclass_fields__ if name not in ("source", "raw")}
    values = {key: value for key, value in fields.items() if key in known and value is not None}
    if source in ("comfyui", "invokeai") and isinstance(values.get("sampler"), str):
        values["sampler"], values["schedule"] = split_schedule(normalise_sampler(values["sampler"]))
    if values.get("width") is None or values.get("height") is None:
        values["width"], values["height"] = image_size
    return ImageMetadata(**values, source=source, raw=dict(chunks))


def read_metadata(path: str | Path) -> ImageMetadata:
    """Everything the image at ``path`` says about how it was made.

    Never fails on odd or missing metadata (the result then has ``source`` None); raises ValueError
    with a readable message when the file is not an image at all or cannot be opened.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            return metadata_from_chunks(_text_chunks(image), image.size)
    except FileNotFoundError as error:
        raise ValueError(f"{path} does not exist") from error
    except (UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise ValueError(f"{path.name} is not an image this app can read") from error
    except (OSError, SyntaxError, EOFError) as error:
        raise ValueError(f"{path.name} could not be read: {error}") from error
