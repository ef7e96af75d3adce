"""Readers for metadata written by other tools: ComfyUI graphs and InvokeAI records.

Each reader takes the decoded JSON and returns a dict of the fields it could find (``prompt``,
``negative_prompt``, ``seed``, ``steps``, ``sampler``, ``guidance``, ``width``, ``height``,
``model_name``, ``model_hash``). Graphs from other tools vary endlessly, so every lookup is defensive:
a missing or odd node yields fewer fields, never an exception.
"""

from __future__ import annotations

from typing import Any

from ldm_studio.engine.samplers import SAMPLERS, canonical
from ldm_studio.gallery.networks import (
    NetworkRef,
    clip_skip_from_comfyui,
    clip_skip_from_invokeai,
    file_stem,
)

SAMPLER_NODES = ("KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced")
TEXT_INPUTS = ("text", "text_g", "text_l", "string", "value", "prompt")
SEED_INPUTS = ("seed", "noise_seed", "value")
LORA_NODES = ("LoraLoader", "LoraLoaderModelOnly")
# ComfyUI node modes: 2 = muted, 4 = bypassed — such a LoRA did not take part in the image.
INACTIVE_MODES = (2, 4)
# How deep to follow links (conditioning combiners, ControlNet, primitives) before giving up.
MAX_LINK_DEPTH = 8


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


class _ApiGraph:
    """ComfyUI's ``prompt`` chunk: ``{node_id: {"class_type": ..., "inputs": {...}}}``."""

    def __init__(self, graph: dict[str, Any]) -> None:
        self.nodes = {str(key): node for key, node in graph.items() if isinstance(node, dict)}

    def node(self, link: Any) -> dict[str, Any] | None:
        return self.nodes.get(str(link[0])) if _is_link(link) else None

    def inputs(self, node: dict[str, Any] | None) -> dict[str, Any]:
        inputs = (node or {}).get("inputs")
        return inputs if isinstance(inputs, dict) else {}

    def text(self, link: Any, depth: int = 0) -> str | None:
        """The first prompt text upstream of a conditioning (or string) link."""
        node = self.node(link)
        if node is None or depth > MAX_LINK_DEPTH:
            return None
        inputs = self.inputs(node)
        for name in TEXT_INPUTS:
            value = inputs.get(name)
            if isinstance(value, str) and value:
                return value
            if _is_link(value):
                found = self.text(value, depth + 1)
                if found:
                    return found
        for value in inputs.values():  # conditioning combiners, ControlNet apply, ...
            if _is_link(value):
                found = self.text(value, depth + 1)
                if found:
                    return found
        return None

    def number(self, value: Any, names: tuple[str, ...], depth: int = 0) -> Any:
        """A literal input, or the literal behind a primitive node it links to."""
        if not _is_link(value):
            return value
        if depth > MAX_LINK_DEPTH:
            return None
        inputs = self.inputs(self.node(value))
        for name in names:
            if name in inputs:
                return self.number(inputs[name], names, depth + 1)
        return None

    def upstream(self, link: Any, class_types: tuple[str, ...], depth: int = 0) -> dict[str, Any] | None:
        node = self.node(link)
        if node is None or depth > MAX_LINK_DEPTH:
            return None
        if node.get("class_type") in class_types:
            return node
        for value in self.inputs(node).values():
            if _is_link(value):
                found = self.upstream(value, class_types, depth + 1)
                if found is not None:
                    return found
        return None


def first_pass_sampler(api: _ApiGraph) -> dict[str, Any] | None:
    """The sampler whose latent comes from no other sampler (a hires-fix graph has two)."""
    samplers = [node for node in api.nodes.values() if node.get("class_type") in SAMPLER_NODES]
    for node in samplers:
        if api.upstream(api.inputs(node).get("latent_image"), SAMPLER_NODES) is None:
            return node
    return samplers[0] if samplers else None


def read_comfyui_prompt(graph: Any) -> dict[str, Any]:
    """Fields from ComfyUI's API-format graph, following KSampler → positive → CLIPTextEncode."""
    if not isinstance(graph, dict):
        return {}
    api = _ApiGraph(graph)
    sampler = first_pass_sampler(api)
    if sampler is None:
        return {}
    inputs = api.inputs(sampler)
    fields: dict[str, Any] = {}
    if (text := api.text(inputs.get("positive"))) is not None:
        fields["prompt"] = text
    if (text := api.text(inputs.get("negative"))) is not None:
        fields["negative_prompt"] = text
    for name in ("seed", "noise_seed"):
        if (seed := _as_int(api.number(inputs.get(name), SEED_INPUTS))) is not None:
            fields["seed"] = seed
            break
    if (steps := _as_int(api.number(inputs.get("steps"), ("steps", "value")))) is not None:
        fields["steps"] = steps
    if (cfg := _as_float(api.number(inputs.get("cfg"), ("cfg", "value")))) is not None:
        fields["guidance"] = cfg
    if isinstance(inputs.get("sampler_name"), str):
        scheduler = inputs.get("scheduler")
        fields["sampler"] = inputs["sampler_name"] + (f" {scheduler}" if isinstance(scheduler, str) else "")
    latent = api.upstream(inputs.get("latent_image"), ("EmptyLatentImage", "EmptySD3LatentImage"))
    if latent is not None:
        width, height = (_as_int(api.inputs(latent).get(k)) for k in ("width", "height"))
        if width and height:
            fields["width"], fields["height"] = width, height
    if loras := _comfyui_loras(api, inputs.get("model")):
        fields["loras"] = loras
    clip_layer = api.upstream(inputs.get("positive"), ("CLIPSetLastLayer",))
    if clip_layer is not None:
        fields["clip_skip"] = clip_skip_from_comfyui(api.inputs(clip_layer).get("stop_at_clip_layer"))
    loader = api.upstream(inputs.get("model"), ("CheckpointLoaderSimple", "CheckpointLoader", "UNETLoader"))
    if loader is not None:
        name = api.inputs(loader).get("ckpt_name") or api.inputs(loader).get("unet_name")
        if isinstance(name, str):
            fields["model_name"] = name
    return fields


def _lora_ref(name: Any, strength_model: Any, strength_clip: Any) -> NetworkRef | None:
    if not isinstance(name, str) or not name:
        return None
    unet = _as_float(strength_model)
    text = _as_float(strength_clip)
    unet = 1.0 if unet is None else unet
    return NetworkRef(
        name=file_stem(name),
        weight=unet if text is None else text,
        unet_weight=None if text is None or text == unet else unet,
    )


def _comfyui_loras(api: _ApiGraph, model_link: Any) -> tuple[NetworkRef, ...]:
    """The LoraLoader chain from the sampler's model input up to the checkpoint, checkpoint side first."""
    found: list[NetworkRef] = []
    link = model_link
    for _ in range(4 * MAX_LINK_DEPTH):
        node = api.node(link)
        if node is None:
            break
        inputs = api.inputs(node)
        if node.get("class_type") in LORA_NODES:
            ref = _lora_ref(
                inputs.get("lora_name"), inputs.get("strength_model"), inputs.get("strength_clip")
            )
            if ref is not None:
                found.append(ref)
        link = inputs.get("model")
    return tuple(reversed(found))


def read_comfyui_workflow(workflow: Any) -> dict[str, Any]:
    """Fields from ComfyUI's UI-format ``workflow`` (used when the ``prompt`` chunk is missing)."""
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        return {}
    nodes = {node.get("id"): node for node in workflow["nodes"] if isinstance(node, dict)}
    # links: [link_id, from_node, from_slot, to_node, to_slot, type]
    link_sources = {
        link[0]: link[1] for link in workflow.get("links") or [] if isinstance(link, list) and len(link) >= 4
    }

    def widget(node: dict[str, Any] | None, index: int) -> Any:
        values = (node or {}).get("widgets_values")
        return values[index] if isinstance(values, list) and len(values) > index else None

    def source_of(node: dict[str, Any], input_name: str) -> dict[str, Any] | None:
        for entry in node.get("inputs") or []:
            if isinstance(entry, dict) and entry.get("name") == input_name:
                return nodes.get(link_sources.get(entry.get("link")))
        return None

    def text_upstream(node: dict[str, Any] | None, depth: int = 0) -> str | None:
        if node is None or depth > MAX_LINK_DEPTH:
            return None
        first = widget(node, 0)
        if isinstance(first, str) and first and "CLIPTextEncode" in str(node.get("type")):
            return first
        for entry in node.get("inputs") or []:
            if isinstance(entry, dict):
                found = text_upstream(nodes.get(link_sources.get(entry.get("link"))), depth + 1)
                if found:
                    return found
        return first if isinstance(first, str) and first else None

    sampler = next((n for n in nodes.values() if n.get("type") in ("KSampler", "KSamplerAdvanced")), None)
    if sampler is None:
        return {}
    fields: dict[str, Any] = {}
    if (text := text_upstream(source_of(sampler, "positive"))) is not None:
        fields["prompt"] = text
    if (text := text_upstream(source_of(sampler, "negative"))) is not None:
        fields["negative_prompt"] = text
    # KSampler widgets: seed, control, steps, cfg, sampler, scheduler, denoise;
    # KSamplerAdvanced starts with add_noise, so everything shifts by one.
    offset = 1 if sampler.get("type") == "KSamplerAdvanced" else 0
    if (seed := _as_int(widget(sampler, offset))) is not None:
        fields["seed"] = seed
    if (steps := _as_int(widget(sampler, offset + 2))) is not None:
        fields["steps"] = steps
    if (cfg := _as_float(widget(sampler, offset + 3))) is not None:
        fields["guidance"] = cfg
    if isinstance(widget(sampler, offset + 4), str):
        fields["sampler"] = widget(sampler, offset + 4)
    active = [node for node in nodes.values() if node.get("mode") not in INACTIVE_MODES]
    loras = []
    for node in active:
        if node.get("type") in LORA_NODES:
            strength_clip = widget(node, 2) if node.get("type") == "LoraLoader" else None
            if (ref := _lora_ref(widget(node, 0), widget(node, 1), strength_clip)) is not None:
                loras.append(ref)
    if loras:
        fields["loras"] = tuple(loras)
    clip_layer = next((node for node in active if node.get("type") == "CLIPSetLastLayer"), None)
    if clip_layer is not None:
        fields["clip_skip"] = clip_skip_from_comfyui(widget(clip_layer, 0))
    return fields


def read_invokeai(record: Any) -> dict[str, Any]:
    """Fields from InvokeAI 3+/4+ ``invokeai_metadata`` (and the older 2.x ``sd-metadata``)."""
    if not isinstance(record, dict):
        return {}
    if isinstance(record.get("image"), dict):  # InvokeAI 2.x "sd-metadata"
        image = record["image"]
        prompt = image.get("prompt")
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], dict):
            prompt = prompt[0].get("prompt")
        record = {
            "positive_prompt": prompt,
            "seed": image.get("seed"),
            "steps": image.get("steps"),
            "cfg_scale": image.get("cfg_scale"),
            "scheduler": image.get("sampler"),
            "width": image.get("width"),
            "height": image.get("height"),
            "model": record.get("model_weights"),
        }
    fields: dict[str, Any] = {}
    for source, target in (("positive_prompt", "prompt"), ("negative_prompt", "negative_prompt")):
        if isinstance(record.get(source), str):
            fields[target] = record[source]
    for source, target, convert in (
        ("seed", "seed", _as_int),
        ("steps", "steps", _as_int),
        ("cfg_scale", "guidance", _as_float),
        ("width", "width", _as_int),
        ("height", "height", _as_int),
    ):
        if (value := convert(record.get(source))) is not None:
            fields[target] = value
    if isinstance(record.get("scheduler"), str):
        fields["sampler"] = record["scheduler"]
    model = record.get("model")
    if isinstance(model, dict):
        name = model.get("name") or model.get("model_name")
        if isinstance(name, str):
            fields["model_name"] = name
        if isinstance(model.get("hash"), str):
            fields["model_hash"] = model["hash"]
    elif isinstance(model, str):
        fields["model_name"] = model
    if (clip_skip := clip_skip_from_invokeai(record.get("clip_skip"))) is not None:
        fields["clip_skip"] = clip_skip
    if loras := _invokeai_loras(record.get("loras")):
        fields["loras"] = loras
    return fields


def _invokeai_loras(entries: Any) -> tuple[NetworkRef, ...]:
    """InvokeAI 4 ``{"model": {"name", "hash"}, "weight"}``; 3.x ``{"lora": {"model_name"}, "weight"}``."""
    refs = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        model = entry.get("model") or entry.get("lora")
        if not isinstance(model, dict):
            continue
        name = model.get("name") or model.get("model_name")
        if not isinstance(name, str) or not name:
            continue
        weight = _as_float(entry.get("weight"))
        digest = model.get("hash") if isinstance(model.get("hash"), str) else ""
        refs.append(NetworkRef(name=file_stem(name), hash=digest, weight=1.0 if weight is None else weight))
    return tuple(refs)


# Other tools' sampler names → ours (see the engine's sampler table); unknown names pass through.
SAMPLER_ALIASES = {
    "euler": "Euler",
    "euler_ancestral": "Euler a",
    "euler_a": "Euler a",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m karras": "DPM++ 2M Karras",
    "dpmpp_2m_k": "DPM++ 2M Karras",
    "ddim": "DDIM",
    "uni_pc": "UniPC",
    "unipc": "UniPC",
    "heun": "Heun",
    "lms": "LMS",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_2m_sde_k": "DPM++ 2M SDE Karras",
    "lcm": "LCM",
    "tcd": "TCD",
}


def normalise_sampler(name: str) -> str:
    """ComfyUI ``"euler_ancestral normal"`` / InvokeAI ``"euler_a"`` → ``"Euler a"``; others unchanged."""
    key = name.strip().lower()
    if key in SAMPLER_ALIASES:
        return SAMPLER_ALIASES[key]
    base, _, scheduler = key.partition(" ")
    if scheduler == "karras" and f"{base} karras" in SAMPLER_ALIASES:
        return SAMPLER_ALIASES[f"{base} karras"]
    return SAMPLER_ALIASES.get(base, name) if scheduler in ("normal", "simple", "") else name


def split_schedule(name: str) -> tuple[str, str | None]:
    """ComfyUI's ``"<sampler> <scheduler>"`` left over by ``normalise_sampler`` → our (sampler, schedule
    type): ``"euler sgm_uniform"`` → ``("Euler", "SGM Uniform")``; our own names pass through."""
    if name in SAMPLERS:
        return name, None
    base, _, scheduler = name.strip().partition(" ")
    if scheduler and base.lower() in SAMPLER_ALIASES:
        return canonical(SAMPLER_ALIASES[base.lower()], scheduler)
    return name, None
