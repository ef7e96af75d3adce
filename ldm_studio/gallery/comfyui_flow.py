"""ComfyUI graphs of SD 3.x and FLUX.1: the nodes those graphs use beyond the SD ones in ``foreign.py``.

FLUX graphs sample with ``SamplerCustomAdvanced`` (``RandomNoise`` → seed, ``KSamplerSelect`` → sampler,
``BasicScheduler`` → scheduler and steps, ``BasicGuider`` / ``CFGGuider`` → model, conditioning, CFG),
put the distilled guidance on the conditioning (``FluxGuidance``, ``CLIPTextEncodeFlux``), load the
transformer alone (``UNETLoader``, the GGUF pack's ``UnetLoaderGGUF``) and fix the schedule's shift
(``ModelSamplingFlux`` / ``ModelSamplingSD3``). SD 3 graphs add ``TripleCLIPLoader``,
``CLIPTextEncodeSD3`` and a ``ConditioningZeroOut`` negative (an empty one, whatever it is wired to).

Node, input and widget names are those of ComfyUI's ``nodes.py`` and ``comfy_extras/nodes_flux.py``,
``nodes_sd3.py``, ``nodes_custom_sampler.py``, ``nodes_model_advanced.py``. The UI ``workflow`` form
is turned into the API ``prompt`` form (widget values named by ``WIDGETS``), so one reader serves both.

Besides the usual fields the result has ``extra`` with what our own records hold under the same keys
(``Distilled CFG Scale``: FLUX dev's guidance, which is also ``guidance``, as our requests keep it;
``Shift``: SD 3's fixed shift) and, for the record, ``Max shift`` / ``Base shift`` (FLUX's
size-dependent shift) and ``Text encoders``.
"""

from __future__ import annotations

from typing import Any

from ldm_studio.engine.flow_models import DISTILLED_CFG_KEY, SHIFT_KEY

# The readers of foreign.py, extended; gallery.metadata calls these (foreign.py does not import this
# module, so the two stay one-way).
from ldm_studio.gallery.foreign import (
    INACTIVE_MODES,
    MAX_LINK_DEPTH,
    SEED_INPUTS,
    _ApiGraph,
    _as_float,
    _as_int,
    _comfyui_loras,
    _is_link,
    first_pass_sampler,
    read_comfyui_prompt,
    read_comfyui_workflow,
)

# Widget order of each node as the UI form stores it in ``widgets_values`` (a seed is followed by
# the frontend's "control_after_generate" value).
WIDGETS: dict[str, tuple[str, ...]] = {
    "KSampler": ("seed", "control_after_generate", "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": (
        "add_noise", "noise_seed", "control_after_generate", "steps", "cfg", "sampler_name", "scheduler",
        "start_at_step", "end_at_step", "return_with_leftover_noise",
    ),
    "SamplerCustom": ("add_noise", "noise_seed", "control_after_generate", "cfg"),
    "RandomNoise": ("noise_seed", "control_after_generate"),
    "KSamplerSelect": ("sampler_name",),
    "BasicScheduler": ("scheduler", "steps", "denoise"),
    "CFGGuider": ("cfg",),
    "FluxGuidance": ("guidance",),
    "CLIPTextEncode": ("text",),
    "CLIPTextEncodeFlux": ("clip_l", "t5xxl", "guidance"),
    "CLIPTextEncodeSD3": ("clip_l", "clip_g", "t5xxl", "empty_padding"),
    "ModelSamplingFlux": ("max_shift", "base_shift", "width", "height"),
    "ModelSamplingSD3": ("shift",),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "EmptySD3LatentImage": ("width", "height", "batch_size"),
    "CheckpointLoaderSimple": ("ckpt_name",),
    "UNETLoader": ("unet_name", "weight_dtype"),
    "UnetLoaderGGUF": ("unet_name",),
    "UnetLoaderGGUFAdvanced": ("unet_name", "dequant_dtype", "patch_dtype", "patch_on_device"),
    "DualCLIPLoader": ("clip_name1", "clip_name2", "type", "device"),
    "TripleCLIPLoader": ("clip_name1", "clip_name2", "clip_name3"),
    "CLIPLoader": ("clip_name", "type", "device"),
    "LoraLoader": ("lora_name", "strength_model", "strength_clip"),
    "LoraLoaderModelOnly": ("lora_name", "strength_model"),
    "CLIPSetLastLayer": ("stop_at_clip_layer",),
}  # fmt: skip

# Any of these makes a graph one this module reads (SD graphs stay with ``foreign.py`` alone).
FLOW_NODES = frozenset(
    {
        "SamplerCustomAdvanced", "SamplerCustom", "FluxGuidance", "CLIPTextEncodeFlux", "CLIPTextEncodeSD3",
        "ModelSamplingFlux", "ModelSamplingSD3", "TripleCLIPLoader", "EmptySD3LatentImage", "UNETLoader",
        "UnetLoaderGGUF", "UnetLoaderGGUFAdvanced",
    }
)  # fmt: skip
FLOW_CLIP_TYPES = ("flux", "sd3")
MODEL_LOADERS = (
    "CheckpointLoaderSimple", "CheckpointLoader", "UNETLoader", "UnetLoaderGGUF", "UnetLoaderGGUFAdvanced",
)  # fmt: skip
CLIP_LOADERS = ("DualCLIPLoader", "TripleCLIPLoader", "CLIPLoader")
GUIDERS = ("CFGGuider", "BasicGuider")
# T5 first: FLUX and SD 3 read the full prompt there; CLIP-L often gets a shorter tag list.
PROMPT_INPUTS = ("t5xxl", "text", "clip_g", "clip_l", "text_g", "text_l", "string", "value", "prompt")


def is_flow_graph(api: _ApiGraph) -> bool:
    for node in api.nodes.values():
        kind = node.get("class_type")
        if not isinstance(kind, str):
            continue
        if kind in FLOW_NODES:
            return True
        if kind in CLIP_LOADERS and api.inputs(node).get("type") in FLOW_CLIP_TYPES:
            return True
    return False


def prompt_text(api: _ApiGraph, link: Any, depth: int = 0) -> str | None:
    """The prompt behind a conditioning link: "" for a zeroed-out or empty one, None if none is found."""
    node = api.node(link)
    if node is None or depth > MAX_LINK_DEPTH:
        return None
    if node.get("class_type") == "ConditioningZeroOut":
        return ""  # what it is wired to does not matter: the result is an empty conditioning
    inputs = api.inputs(node)
    empty = False
    for name in PROMPT_INPUTS:
        value = inputs.get(name)
        if isinstance(value, str):
            if value:
                return value
            empty = True
        elif _is_link(value):
            found = prompt_text(api, value, depth + 1)
            if found:
                return found
            empty = empty or found == ""
    for name, value in inputs.items():  # combiners, timestep ranges, ControlNet apply, ...
        if name not in PROMPT_INPUTS and _is_link(value):
            found = prompt_text(api, value, depth + 1)
            if found:
                return found
            empty = empty or found == ""
    return "" if empty else None


def _value(api: _ApiGraph, node: dict[str, Any] | None, name: str) -> Any:
    """A node's input, or the literal behind the primitive node it links to."""
    if node is None:
        return None
    return api.number(api.inputs(node).get(name), (name, "value"))


def flow_fields(api: _ApiGraph, sampler: dict[str, Any] | None) -> dict[str, Any]:
    """What a flow graph says beyond (or instead of) what the SD reader finds; {} for other graphs."""
    if sampler is None or not is_flow_graph(api):
        return {}
    inputs = api.inputs(sampler)
    if sampler.get("class_type") == "SamplerCustomAdvanced":
        guider = api.upstream(inputs.get("guider"), GUIDERS)
        links = api.inputs(guider)
        positive = links.get("positive", links.get("conditioning"))
        negative, model, cfg = links.get("negative"), links.get("model"), _value(api, guider, "cfg")
        if guider is None:  # a node pack's guider: its prompt is somewhere upstream of it
            positive = inputs.get("guider")
        seed = _value(api, api.upstream(inputs.get("noise"), ("RandomNoise",)), "noise_seed")
    else:  # KSampler, KSamplerAdvanced, SamplerCustom
        positive, negative, model = inputs.get("positive"), inputs.get("negative"), inputs.get("model")
        cfg = _value(api, sampler, "cfg")
        seed = next((api.number(inputs[n], SEED_INPUTS) for n in ("seed", "noise_seed") if n in inputs), None)
    steps, sampler_name, scheduler = (_value(api, sampler, n) for n in ("steps", "sampler_name", "scheduler"))
    if "sigmas" in inputs:  # custom sampling: the schedule and the sampler are nodes of their own
        schedule = api.upstream(inputs.get("sigmas"), ("BasicScheduler",))
        steps, scheduler = _value(api, schedule, "steps"), _value(api, schedule, "scheduler")
        model = model or api.inputs(schedule).get("model")  # the schedule is the model's
        sampler_name = _value(api, api.upstream(inputs.get("sampler"), ("KSamplerSelect",)), "sampler_name")

    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, link in (("prompt", positive), ("negative_prompt", negative)):
        if (text := prompt_text(api, link)) is not None:
            fields[key] = text
    if (number := _as_int(seed)) is not None:
        fields["seed"] = number
    if (number := _as_int(steps)) is not None:
        fields["steps"] = number
    if isinstance(sampler_name, str):
        fields["sampler"] = sampler_name + (f" {scheduler}" if isinstance(scheduler, str) else "")
    distilled = api.upstream(positive, ("FluxGuidance", "CLIPTextEncodeFlux"))
    if (guidance := _as_float(_value(api, distilled, "guidance"))) is not None:
        # FLUX dev: the guidance input is what our requests call guidance (the CFG stays at 1)
        fields["guidance"] = extra[DISTILLED_CFG_KEY] = guidance
    elif (guidance := _as_float(cfg)) is not None:
        fields["guidance"] = guidance
    fields.update(_size(api, inputs.get("latent_image"), model))
    loader = api.upstream(model, MODEL_LOADERS)
    name = _value(api, loader, "ckpt_name") or _value(api, loader, "unet_name")
    if isinstance(name, str) and name:
        fields["model_name"] = name
    if loras := _comfyui_loras(api, model):
        fields["loras"] = loras
    extra.update(_schedule_extra(api, model))
    encoders = api.upstream(positive, CLIP_LOADERS)
    names = [_value(api, encoders, n) for n in ("clip_name", "clip_name1", "clip_name2", "clip_name3")]
    if names := [name for name in names if isinstance(name, str) and name]:
        extra["Text encoders"] = ", ".join(names)
    if extra:
        fields["extra"] = extra
    return fields


def _size(api: _ApiGraph, latent_link: Any, model_link: Any) -> dict[str, int]:
    """The empty latent's size; else the size ModelSamplingFlux was told (the same in ComfyUI's graphs)."""
    for node in (
        api.upstream(latent_link, ("EmptySD3LatentImage", "EmptyLatentImage")),
        api.upstream(model_link, ("ModelSamplingFlux",)),
    ):
        width, height = (_as_int(_value(api, node, name)) for name in ("width", "height"))
        if width and height and width > 0 and height > 0:
            return {"width": width, "height": height}
    return {}


def _schedule_extra(api: _ApiGraph, model_link: Any) -> dict[str, float]:
    found: dict[str, float] = {}
    sd3 = api.upstream(model_link, ("ModelSamplingSD3",))
    if (shift := _as_float(_value(api, sd3, "shift"))) is not None:
        found[SHIFT_KEY] = shift
    flux = api.upstream(model_link, ("ModelSamplingFlux",))
    for key, name in (("Max shift", "max_shift"), ("Base shift", "base_shift")):
        if (value := _as_float(_value(api, flux, name))) is not None:
            found[key] = value
    return found


def _link_sources(workflow: dict[str, Any]) -> dict[int, list[Any]]:
    """link id → [source node id, output slot]; links are lists (``[id, from, slot, to, slot, type]``)
    in most files, objects in the newer schema."""
    sources: dict[int, list[Any]] = {}
    for link in workflow.get("links") or []:
        if isinstance(link, list) and len(link) >= 4 and isinstance(link[0], int):
            sources[link[0]] = [str(link[1]), link[2]]
        elif isinstance(link, dict) and isinstance(link.get("id"), int):
            sources[link["id"]] = [str(link.get("origin_id")), link.get("origin_slot", 0)]
    return sources


def api_graph(workflow: Any) -> dict[str, dict[str, Any]]:
    """ComfyUI's UI ``workflow`` as an API ``prompt`` graph: widget values by name, links as [id, slot].

    A bypassed or muted node keeps only its links (no class), so the readers pass through it without
    taking its values, much as ComfyUI leaves it out of the graph it runs.
    """
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        return {}
    sources = _link_sources(workflow)
    graph: dict[str, dict[str, Any]] = {}
    for node in workflow["nodes"]:
        if not isinstance(node, dict) or "id" not in node:
            continue
        kind = node.get("type") if node.get("mode") not in INACTIVE_MODES else ""
        values = node.get("widgets_values")
        inputs: dict[str, Any] = {}
        if isinstance(values, dict):  # some custom nodes store their widgets by name
            inputs.update(values)
        elif isinstance(values, list) and isinstance(kind, str):
            inputs.update(zip(WIDGETS.get(kind, ()), values, strict=False))
        for entry in node.get("inputs") or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            link = entry.get("link")
            source = sources.get(link) if isinstance(link, int) else None
            # a widget turned into an input still has its value among the widgets: that one wins
            if source is not None and entry["name"] not in inputs:
                inputs[entry["name"]] = source
        graph[str(node["id"])] = {"class_type": kind, "inputs": inputs}
    return graph


def read_flow_workflow(workflow: Any) -> dict[str, Any]:
    """Fields from a UI ``workflow`` of an SD 3 / FLUX graph (read as its API form); {} for others."""
    graph = api_graph(workflow)
    api = _ApiGraph(graph)
    if not graph or not is_flow_graph(api) or first_pass_sampler(api) is None:
        return {}
    return read_comfyui_graph(graph)


def read_comfyui_graph(graph: Any) -> dict[str, Any]:
    """Fields from an API ``prompt`` graph: the SD reader's, and what SD 3 / FLUX nodes add (custom
    sampling, FluxGuidance, shift) where the graph has them."""
    fields = read_comfyui_prompt(graph)
    if fields:
        api = _ApiGraph(graph)
        fields.update(flow_fields(api, first_pass_sampler(api)))
    return fields


def read_comfyui_ui_workflow(workflow: Any) -> dict[str, Any]:
    """Fields from a UI ``workflow``: an SD 3 / FLUX graph read as its API form, else the SD reader's."""
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        return {}
    return read_flow_workflow(workflow) or read_comfyui_workflow(workflow)
