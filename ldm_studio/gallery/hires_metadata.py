"""Hires fix in image metadata: A1111's ``Hires …`` settings both ways, and ComfyUI's two-sampler graphs.

A1111 writes (``processing.py``) ``Denoising strength`` and then, in this order, ``Hires sampler``
(only when it differs from the first pass's), ``Hires schedule type`` (only when the second pass's
differs: a hires sampler that cannot take the first pass's falls back to Automatic), ``Hires prompt``
/ ``Hires negative prompt`` (only when they differ), ``Hires upscale`` or ``Hires resize: WxH``,
``Hires steps`` (only when not 0) and ``Hires upscaler``; Forge adds ``Hires CFG Scale``. Its paste
turns hires fix on when ``Denoising strength`` is there together with ``Hires upscale``, ``Hires
upscaler`` or ``Hires resize``.
"""

from __future__ import annotations

import re
from typing import Any

from ldm_studio.engine.hires_request import DEFAULT_UPSCALER, HiresFix
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.foreign import (
    SAMPLER_NODES,
    _ApiGraph,
    _as_float,
    _as_int,
    first_pass_sampler,
    normalise_sampler,
)

HIRES_MARKERS = ("Hires upscale", "Hires upscaler", "Hires resize")
CFG_KEYS = ("Hires CFG Scale", "Hires CFG scale")  # Forge writes the first; an extension the second


def _number(value: float) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def hires_settings(request: GenerationRequest) -> dict[str, str]:
    """A1111's settings for the request's hires fix, in A1111's order (empty without one)."""
    hires = request.hires
    if hires is None:
        return {}
    settings = {"Denoising strength": _number(hires.strength)}
    if hires.sampler and hires.sampler != request.sampler:
        settings["Hires sampler"] = hires.sampler
    schedule = hires.pass_schedule(request.sampler, request.schedule)
    named = hires.sampler.endswith(f" {request.schedule}")  # "DPM++ 2M Karras" is Karras by its name
    if schedule != request.schedule and not named:  # A1111 names the schedule the pass fell back to
        settings["Hires schedule type"] = schedule
    if hires.prompt and hires.prompt != request.prompt:
        settings["Hires prompt"] = hires.prompt
    if hires.negative_prompt and hires.negative_prompt != request.negative_prompt:
        settings["Hires negative prompt"] = hires.negative_prompt
    if hires.guidance is not None and hires.guidance != request.guidance:
        settings["Hires CFG Scale"] = _number(hires.guidance)
    if hires.resize is None:
        settings["Hires upscale"] = _number(hires.scale)
    else:
        settings["Hires resize"] = f"{hires.resize[0]}x{hires.resize[1]}"
    if hires.steps:
        settings["Hires steps"] = str(hires.steps)
    settings["Hires upscaler"] = hires.upscaler
    return settings


def hires_from_a1111(parsed: dict[str, Any]) -> HiresFix | None:
    """The hires fix of a parsed A1111 ``parameters`` text (``parse_parameters``' result), or None.

    Values A1111 could not have written (a scale of 0, a strength above 1) give None rather than an
    error: the rest of the image's settings are still worth reusing.
    """
    extra = parsed.get("extra") or {}
    strength = parsed.get("denoising_strength")
    if strength is None or not any(key in extra for key in HIRES_MARKERS):
        return None
    values: dict[str, Any] = {"strength": float(strength)}
    scale = _as_float(extra.get("Hires upscale"))
    if scale is not None:
        values["scale"] = scale
    resize = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", str(extra.get("Hires resize", "")))
    if resize and (int(resize[1]) or int(resize[2])):
        values["resize"] = (int(resize[1]), int(resize[2]))
    steps = _as_int(extra.get("Hires steps"))
    if steps is not None:
        values["steps"] = steps
    values["upscaler"] = str(extra.get("Hires upscaler") or DEFAULT_UPSCALER)
    sampler = str(extra.get("Hires sampler", ""))
    if sampler and sampler != "Use same sampler":
        schedule = str(extra.get("Hires schedule type", extra.get("Schedule type", "")))
        karras = schedule.lower() == "karras" and not sampler.endswith("Karras")
        values["sampler"] = f"{sampler} Karras" if karras else sampler
    values["prompt"] = str(extra.get("Hires prompt", ""))
    values["negative_prompt"] = str(extra.get("Hires negative prompt", ""))
    for key in CFG_KEYS:
        if (guidance := _as_float(extra.get(key))) is not None:
            values["guidance"] = guidance
    try:
        return HiresFix(**values)
    except ValueError:
        return None


# ---- ComfyUI -------------------------------------------------------------------------------------

# ComfyUI's upscale_method names -> ours. Upscaling by a whole factor, "area" is the same as nearest.
COMFY_LATENT_MODES = {
    "nearest-exact": "Latent (nearest-exact)",
    "bilinear": "Latent",
    "bicubic": "Latent (bicubic)",
    "area": "Latent (nearest)",
}
COMFY_PIXEL_MODES = {"lanczos": "Lanczos", "nearest-exact": "Nearest", "bicubic": "Bicubic"}


def comfyui_hires(graph: Any) -> HiresFix | None:
    """Hires fix in a ComfyUI API graph, where it is unambiguous: a second KSampler whose latent is
    the first's, enlarged by LatentUpscale(By), or decoded, scaled (ImageScale(By), an upscale model)
    and encoded again."""
    if not isinstance(graph, dict):
        return None
    api = _ApiGraph(graph)
    first = first_pass_sampler(api)
    if first is None:
        return None
    second = next(
        (
            node
            for node in api.nodes.values()
            if node.get("class_type") in SAMPLER_NODES
            and node is not first
            and api.upstream(api.inputs(node).get("latent_image"), SAMPLER_NODES) is first
        ),
        None,
    )
    if second is None:
        return None
    found = _enlargement(api, api.inputs(second).get("latent_image"))
    if found is None:
        return None
    inputs = api.inputs(second)
    values: dict[str, Any] = dict(found)
    if (steps := _as_int(api.number(inputs.get("steps"), ("steps", "value")))) is not None:
        values["steps"] = steps
    # KSampler's denoise d over s steps runs the last s of int(s / d): A1111's hires steps exactly.
    values["strength"] = _as_float(api.number(inputs.get("denoise"), ("denoise", "value"))) or 1.0
    first_inputs = api.inputs(first)
    if isinstance(inputs.get("sampler_name"), str) and inputs.get("sampler_name") != first_inputs.get(
        "sampler_name"
    ):
        scheduler = inputs.get("scheduler")
        values["sampler"] = normalise_sampler(
            inputs["sampler_name"] + (f" {scheduler}" if isinstance(scheduler, str) else "")
        )
    cfg = _as_float(api.number(inputs.get("cfg"), ("cfg", "value")))
    if cfg is not None and cfg != _as_float(api.number(first_inputs.get("cfg"), ("cfg", "value"))):
        values["guidance"] = cfg
    for name, key in (("positive", "prompt"), ("negative", "negative_prompt")):
        text, first_text = api.text(inputs.get(name)), api.text(first_inputs.get(name))
        if text and text != first_text:
            values[key] = text
    try:
        return HiresFix(**values)
    except ValueError:
        return None


def _enlargement(api: _ApiGraph, link: Any) -> dict[str, Any] | None:
    """How the second sampler's latent was enlarged: upscaler and scale or resize, or None."""
    node = api.node(link)
    kind = (node or {}).get("class_type")
    inputs = api.inputs(node)
    if kind == "LatentUpscaleBy":
        mode, scale = (
            COMFY_LATENT_MODES.get(str(inputs.get("upscale_method"))),
            _as_float(inputs.get("scale_by")),
        )
        return {"upscaler": mode, "scale": scale} if mode and scale else None
    if kind == "LatentUpscale":
        mode = COMFY_LATENT_MODES.get(str(inputs.get("upscale_method")))
        size = (_as_int(inputs.get("width")), _as_int(inputs.get("height")))
        return {"upscaler": mode, "resize": size} if mode and None not in size else None
    if kind == "VAEEncode":
        return _pixel_enlargement(api, inputs.get("pixels"))
    return None


def _pixel_enlargement(api: _ApiGraph, link: Any) -> dict[str, Any] | None:
    node = api.node(link)
    kind = (node or {}).get("class_type")
    inputs = api.inputs(node)
    below = api.node(inputs.get("image"))
    if kind == "ImageScaleBy":
        scale = _as_float(inputs.get("scale_by"))
        if below is not None and below.get("class_type") == "ImageUpscaleWithModel":
            model = _upscale_model(api, below)
            return None if model is None or not scale else {"upscaler": model[0], "scale": model[1] * scale}
        mode = COMFY_PIXEL_MODES.get(str(inputs.get("upscale_method")), "Lanczos")
        return {"upscaler": mode, "scale": scale} if scale else None
    if kind == "ImageScale":
        size = (_as_int(inputs.get("width")), _as_int(inputs.get("height")))
        if None in size:
            return None
        if below is not None and below.get("class_type") == "ImageUpscaleWithModel":
            model = _upscale_model(api, below)
            return None if model is None else {"upscaler": model[0], "resize": size}
        return {
            "upscaler": COMFY_PIXEL_MODES.get(str(inputs.get("upscale_method")), "Lanczos"),
            "resize": size,
        }
    if kind == "ImageUpscaleWithModel":
        model = _upscale_model(api, node)
        return None if model is None else {"upscaler": model[0], "scale": model[1]}
    return None


def _upscale_model(api: _ApiGraph, node: dict[str, Any]) -> tuple[str, float] | None:
    """(name, scale) of an upscale model, its scale from the name ("4x-UltraSharp"): the graph
    does not say it, so a name without one is not clear enough."""
    loader = api.node(api.inputs(node).get("upscale_model"))
    name = api.inputs(loader).get("model_name")
    if not isinstance(name, str):
        return None
    stem = re.sub(r"\.(pth|pt|safetensors|bin|ckpt)$", "", name.replace("\\", "/").rsplit("/", 1)[-1])
    factor = re.match(r"^(\d+)x|.*?[_\-\s](\d+)x\b", stem, re.IGNORECASE)
    if factor is None:
        return None
    return stem, float(factor[1] or factor[2])


def with_comfyui_hires(fields: dict[str, Any], chunks: dict[str, str]) -> dict[str, Any] | None:
    """ComfyUI's prompt-graph fields with the hires fix its graph shows (None when nothing was read)."""
    if not fields:
        return None
    import json

    try:
        hires = comfyui_hires(json.loads(chunks.get("prompt") or "null"))
    except ValueError:
        hires = None
    return {**fields, "hires": hires} if hires is not None else fields


def hires_changes(hires: HiresFix | None, base: GenerationRequest) -> dict[str, Any]:
    """What reusing an image's settings changes for hires fix: its own, or off. A hires image was
    made from text, so a source image in ``base`` gives way (A1111's paste goes to txt2img)."""
    changes: dict[str, Any] = {"hires": hires}
    if hires is not None and base.init_image:
        changes.update(init_image="", mask="", strength=1.0)
    return changes
