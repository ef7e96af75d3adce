"""ComfyUI graphs of FLUX.1 and SD 3.5 read back: the API ``prompt`` form and the UI ``workflow`` form.

The graphs are written as ComfyUI writes them (node ids as strings in the API form, links as
``[node id, output slot]``; the UI form's ``widgets_values`` in the node's widget order, a seed followed
by its "control_after_generate" value), after ComfyUI's own example graphs.
"""

from __future__ import annotations

import copy
import json
import random

from PIL import Image, PngImagePlugin

from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.comfyui_flow import (
    api_graph,
    read_comfyui_graph,
    read_comfyui_ui_workflow,
    read_flow_workflow,
)
from ldm_studio.gallery.foreign import read_comfyui_prompt
from ldm_studio.gallery.metadata import read_metadata
from ldm_studio.gallery.networks import NetworkRef

FLUX_PROMPT = "a red fox reading a newspaper in a sunlit cafe, film photo"

# FLUX.1 dev, custom sampling (ComfyUI's flux_dev example) with a LoRA on the transformer.
FLUX_DEV = {
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": FLUX_PROMPT, "clip": ["11", 0]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["13", 0], "vae": ["10", 0]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    "10": {"class_type": "VAELoader", "inputs": {"vae_name": "ae.safetensors"}},
    "11": {"class_type": "DualCLIPLoader", "inputs": {
        "clip_name1": "t5xxl_fp16.safetensors", "clip_name2": "clip_l.safetensors", "type": "flux",
        "device": "default"}},
    "12": {"class_type": "UNETLoader", "inputs": {
        "unet_name": "flux1-dev.safetensors", "weight_dtype": "default"}},
    "13": {"class_type": "SamplerCustomAdvanced", "inputs": {
        "noise": ["25", 0], "guider": ["22", 0], "sampler": ["16", 0], "sigmas": ["17", 0],
        "latent_image": ["27", 0]}},
    "16": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
    "17": {"class_type": "BasicScheduler", "inputs": {
        "scheduler": "simple", "steps": 24, "denoise": 1.0, "model": ["30", 0]}},
    "22": {"class_type": "BasicGuider", "inputs": {"model": ["30", 0], "conditioning": ["26", 0]}},
    "25": {"class_type": "RandomNoise", "inputs": {"noise_seed": 3141592653}},
    "26": {"class_type": "FluxGuidance", "inputs": {"guidance": 3.5, "conditioning": ["6", 0]}},
    "27": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1152, "height": 896, "batch_size": 1}},
    "30": {"class_type": "ModelSamplingFlux", "inputs": {
        "max_shift": 1.15, "base_shift": 0.5, "width": 1152, "height": 896, "model": ["31", 0]}},
    "31": {"class_type": "LoraLoaderModelOnly", "inputs": {
        "lora_name": "flux_realism.safetensors", "strength_model": 0.8, "model": ["12", 0]}},
}  # fmt: skip

FLUX_DEV_FIELDS = {
    "prompt": FLUX_PROMPT,
    "seed": 3141592653,
    "steps": 24,
    "sampler": "euler simple",
    "guidance": 3.5,
    "width": 1152,
    "height": 896,
    "model_name": "flux1-dev.safetensors",
    "loras": (NetworkRef(name="flux_realism", weight=0.8),),
    "extra": {
        "Distilled CFG Scale": 3.5,
        "Max shift": 1.15,
        "Base shift": 0.5,
        "Text encoders": "t5xxl_fp16.safetensors, clip_l.safetensors",
    },
}


def _node(node_id, kind, widgets=(), inputs=(), outputs=(), mode=0):
    """One node of the UI form as ComfyUI saves it: ``inputs`` are (name, type, link or None)."""
    return {
        "id": node_id,
        "type": kind,
        "pos": [0, 0],
        "size": [315, 100],
        "flags": {},
        "order": 0,
        "mode": mode,
        "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
        "outputs": [{"name": t, "type": t, "links": links, "slot_index": 0} for t, links in outputs],
        "properties": {"Node name for S&R": kind},
        "widgets_values": list(widgets),
    }


def _width_input(name, link):
    """A widget turned into an input (its value stays among the widgets)."""
    return {"name": name, "type": "INT", "widget": {"name": name}, "link": link}


def flux_dev_workflow() -> dict:
    """FLUX_DEV as the UI saves it, with the template's width/height primitives and a bypassed node."""
    nodes = [
        _node(6, "CLIPTextEncode", [FLUX_PROMPT], [("clip", "CLIP", 10)], [("CONDITIONING", [41])]),
        _node(11, "DualCLIPLoader", ["t5xxl_fp16.safetensors", "clip_l.safetensors", "flux", "default"],
              outputs=[("CLIP", [10])]),
        _node(12, "UNETLoader", ["flux1-dev.safetensors", "default"], outputs=[("MODEL", [56])]),
        _node(13, "SamplerCustomAdvanced", [], [
            ("noise", "NOISE", 37), ("guider", "GUIDER", 30), ("sampler", "SAMPLER", 19),
            ("sigmas", "SIGMAS", 20), ("latent_image", "LATENT", 116)], [("LATENT", [24])]),
        _node(16, "KSamplerSelect", ["euler"], outputs=[("SAMPLER", [19])]),
        _node(17, "BasicScheduler", ["simple", 24, 1], [("model", "MODEL", 55)], [("SIGMAS", [20])]),
        _node(22, "BasicGuider", [], [("model", "MODEL", 54), ("conditioning", "CONDITIONING", 42)],
              [("GUIDER", [30])]),
        _node(25, "RandomNoise", [3141592653, "randomize"], outputs=[("NOISE", [37])]),
        _node(26, "FluxGuidance", [3.5], [("conditioning", "CONDITIONING", 41)], [("CONDITIONING", [42])]),
        _node(27, "EmptySD3LatentImage", [1152, 896, 1], outputs=[("LATENT", [116])]),
        _node(30, "ModelSamplingFlux", [1.15, 0.5, 1152, 896], [("model", "MODEL", 57)],
              [("MODEL", [54, 55])]),
        _node(31, "LoraLoaderModelOnly", ["flux_realism.safetensors", 0.8], [("model", "MODEL", 56)],
              [("MODEL", [57])]),
        # bypassed: its FLUX guidance must not count
        _node(40, "FluxGuidance", [9.0], [("conditioning", "CONDITIONING", None)], mode=4),
        _node(34, "PrimitiveNode", [1152, "fixed"], outputs=[("INT", [112, 115])]),
        _node(35, "PrimitiveNode", [896, "fixed"], outputs=[("INT", [113, 114])]),
        _node(50, "Note", ["FLUX dev: CFG 1, guidance 3.5"]),
    ]  # fmt: skip
    nodes[10]["inputs"] += [_width_input("width", 112), _width_input("height", 113)]
    nodes[9]["inputs"] += [_width_input("width", 115), _width_input("height", 114)]
    links = [
        [10, 11, 0, 6, 0, "CLIP"], [19, 16, 0, 13, 2, "SAMPLER"], [20, 17, 0, 13, 3, "SIGMAS"],
        [24, 13, 0, 8, 0, "LATENT"], [30, 22, 0, 13, 1, "GUIDER"], [37, 25, 0, 13, 0, "NOISE"],
        [41, 6, 0, 26, 0, "CONDITIONING"], [42, 26, 0, 22, 1, "CONDITIONING"], [54, 30, 0, 22, 0, "MODEL"],
        [55, 30, 0, 17, 0, "MODEL"], [56, 12, 0, 31, 0, "MODEL"], [57, 31, 0, 30, 0, "MODEL"],
        [112, 34, 0, 30, 1, "INT"], [113, 35, 0, 30, 2, "INT"], [114, 35, 0, 27, 1, "INT"],
        [115, 34, 0, 27, 0, "INT"], [116, 27, 0, 13, 4, "LATENT"],
    ]  # fmt: skip
    return {"last_node_id": 50, "last_link_id": 116, "nodes": nodes, "links": links, "version": 0.4}


def test_flux_dev_custom_sampling_prompt_graph():
    assert read_comfyui_graph(FLUX_DEV) == FLUX_DEV_FIELDS


def test_flux_dev_custom_sampling_workflow_reads_like_its_prompt_graph():
    assert read_comfyui_ui_workflow(flux_dev_workflow()) == FLUX_DEV_FIELDS


def test_workflow_links_in_the_newer_object_form():
    workflow = flux_dev_workflow()
    workflow["links"] = [
        {"id": a, "origin_id": b, "origin_slot": c, "target_id": d, "target_slot": e, "type": t}
        for a, b, c, d, e, t in workflow["links"]
    ]
    workflow["version"] = 1
    assert read_comfyui_ui_workflow(workflow) == FLUX_DEV_FIELDS


def test_ui_form_becomes_the_api_form():
    graph = api_graph(flux_dev_workflow())
    assert graph["25"] == {
        "class_type": "RandomNoise",
        "inputs": {"noise_seed": 3141592653, "control_after_generate": "randomize"},
    }
    assert graph["17"]["inputs"] == {"scheduler": "simple", "steps": 24, "denoise": 1, "model": ["30", 0]}
    assert graph["40"] == {"class_type": "", "inputs": {}}  # bypassed: no values of its own


def flux_ksampler(checkpoint: str, cfg: float, steps: int, guidance: float | None) -> dict:
    """FLUX with the plain KSampler (ComfyUI's checkpoint examples): cfg 1, FluxGuidance for dev."""
    positive = ["6", 0] if guidance is None else ["35", 0]
    graph = {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 972054013131368, "steps": steps, "cfg": cfg, "sampler_name": "euler",
            "scheduler": "simple", "denoise": 1.0, "model": ["4", 0], "positive": positive,
            "negative": ["33", 0], "latent_image": ["27", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {
            "text": "a lighthouse in a storm", "clip": ["4", 1]}},
        "33": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "27": {"class_type": "EmptySD3LatentImage", "inputs": {
            "width": 1024, "height": 768, "batch_size": 1}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "flux", "images": ["8", 0]}},
    }  # fmt: skip
    if guidance is not None:
        graph["35"] = {
            "class_type": "FluxGuidance",
            "inputs": {"guidance": guidance, "conditioning": ["6", 0]},
        }
    return graph


def test_flux_schnell_with_ksampler():
    fields = read_comfyui_graph(flux_ksampler("flux1-schnell-fp8.safetensors", 1.0, 4, None))
    assert fields == {
        "prompt": "a lighthouse in a storm",
        "negative_prompt": "",
        "seed": 972054013131368,
        "steps": 4,
        "guidance": 1.0,
        "sampler": "euler simple",
        "width": 1024,
        "height": 768,
        "model_name": "flux1-schnell-fp8.safetensors",
    }


def test_flux_dev_with_ksampler_takes_the_flux_guidance_not_the_cfg():
    fields = read_comfyui_graph(flux_ksampler("flux1-dev-fp8.safetensors", 1.0, 20, 2.5))
    assert (fields["guidance"], fields["extra"]) == (2.5, {"Distilled CFG Scale": 2.5})
    assert (fields["prompt"], fields["steps"], fields["model_name"]) == (
        "a lighthouse in a storm",
        20,
        "flux1-dev-fp8.safetensors",
    )


FLUX_GGUF_TEXT_ENCODE_FLUX = {
    "1": {"class_type": "UnetLoaderGGUF", "inputs": {"unet_name": "flux1-dev-Q4_K_S.gguf"}},
    "2": {"class_type": "DualCLIPLoader", "inputs": {
        "clip_name1": "clip_l.safetensors", "clip_name2": "t5xxl_fp8_e4m3fn.safetensors", "type": "flux"}},
    "3": {"class_type": "CLIPTextEncodeFlux", "inputs": {
        "clip_l": "castle, mountains, sunset", "t5xxl": "A castle on a mountain ridge at sunset.",
        "guidance": 4.0, "clip": ["2", 0]}},
    "4": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["3", 0]}},
    "5": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 896, "height": 1152, "batch_size": 2}},
    "6": {"class_type": "KSampler", "inputs": {
        "seed": 5, "steps": 28, "cfg": 1.0, "sampler_name": "dpmpp_2m", "scheduler": "sgm_uniform",
        "denoise": 1.0, "model": ["1", 0], "positive": ["3", 0], "negative": ["4", 0],
        "latent_image": ["5", 0]}},
}  # fmt: skip


def test_flux_clip_text_encode_flux_with_a_gguf_transformer():
    fields = read_comfyui_graph(FLUX_GGUF_TEXT_ENCODE_FLUX)
    assert fields == {
        "prompt": "A castle on a mountain ridge at sunset.",  # the T5 text: the full prompt
        "negative_prompt": "",  # zeroed out, although it is wired to the positive
        "seed": 5,
        "steps": 28,
        "guidance": 4.0,
        "sampler": "dpmpp_2m sgm_uniform",
        "width": 896,
        "height": 1152,
        "model_name": "flux1-dev-Q4_K_S.gguf",
        "extra": {
            "Distilled CFG Scale": 4.0,
            "Text encoders": "clip_l.safetensors, t5xxl_fp8_e4m3fn.safetensors",
        },
    }


# SD 3.5 Large: TripleCLIPLoader, ModelSamplingSD3, KSampler, a zeroed-out negative.
SD35 = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd3.5_large.safetensors"}},
    "11": {"class_type": "TripleCLIPLoader", "inputs": {
        "clip_name1": "clip_l.safetensors", "clip_name2": "clip_g.safetensors",
        "clip_name3": "t5xxl_fp16.safetensors"}},
    "13": {"class_type": "ModelSamplingSD3", "inputs": {"shift": 3.0, "model": ["4", 0]}},
    "16": {"class_type": "CLIPTextEncode", "inputs": {
        "text": "an owl made of brass gears", "clip": ["11", 0]}},
    "40": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["11", 0]}},
    "67": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["16", 0]}},
    "135": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 714, "steps": 40, "cfg": 4.5, "sampler_name": "euler", "scheduler": "sgm_uniform",
        "denoise": 1.0, "model": ["13", 0], "positive": ["16", 0], "negative": ["67", 0],
        "latent_image": ["135", 0]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "sd3.5", "images": ["8", 0]}},
}  # fmt: skip

SD35_FIELDS = {
    "prompt": "an owl made of brass gears",
    "negative_prompt": "",
    "seed": 714,
    "steps": 40,
    "guidance": 4.5,
    "sampler": "euler sgm_uniform",
    "width": 1024,
    "height": 1024,
    "model_name": "sd3.5_large.safetensors",
    "extra": {
        "Shift": 3.0,
        "Text encoders": "clip_l.safetensors, clip_g.safetensors, t5xxl_fp16.safetensors",
    },
}


def test_sd35_with_triple_clip_model_sampling_sd3_and_zeroed_negative():
    assert read_comfyui_graph(SD35) == SD35_FIELDS


def sd35_workflow() -> dict:
    nodes = [
        _node(4, "CheckpointLoaderSimple", ["sd3.5_large.safetensors"],
              outputs=[("MODEL", [1]), ("CLIP", []), ("VAE", [7])]),
        _node(11, "TripleCLIPLoader", ["clip_l.safetensors", "clip_g.safetensors", "t5xxl_fp16.safetensors"],
              outputs=[("CLIP", [5, 6])]),
        _node(13, "ModelSamplingSD3", [3.0], [("model", "MODEL", 1)], [("MODEL", [2])]),
        _node(16, "CLIPTextEncode", ["an owl made of brass gears"], [("clip", "CLIP", 5)],
              [("CONDITIONING", [3, 8])]),
        _node(67, "ConditioningZeroOut", [], [("conditioning", "CONDITIONING", 8)], [("CONDITIONING", [4])]),
        _node(135, "EmptySD3LatentImage", [1024, 1024, 1], outputs=[("LATENT", [9])]),
        _node(3, "KSampler", [714, "fixed", 40, 4.5, "euler", "sgm_uniform", 1], [
            ("model", "MODEL", 2), ("positive", "CONDITIONING", 3), ("negative", "CONDITIONING", 4),
            ("latent_image", "LATENT", 9)], [("LATENT", [10])]),
    ]  # fmt: skip
    links = [
        [1, 4, 0, 13, 0, "MODEL"], [2, 13, 0, 3, 0, "MODEL"], [3, 16, 0, 3, 1, "CONDITIONING"],
        [4, 67, 0, 3, 2, "CONDITIONING"], [5, 11, 0, 16, 0, "CLIP"], [8, 16, 0, 67, 0, "CONDITIONING"],
        [9, 135, 0, 3, 3, "LATENT"],
    ]  # fmt: skip
    return {"nodes": nodes, "links": links, "version": 0.4}


def test_sd35_workflow_reads_like_its_prompt_graph():
    assert read_comfyui_ui_workflow(sd35_workflow()) == SD35_FIELDS


def test_sd35_clip_text_encode_sd3_and_cfg_guider():
    graph = {
        "1": {"class_type": "UNETLoader", "inputs": {
            "unet_name": "sd3.5_medium.safetensors", "weight_dtype": "default"}},
        "2": {"class_type": "DualCLIPLoader", "inputs": {
            "clip_name1": "clip_g.safetensors", "clip_name2": "clip_l.safetensors", "type": "sd3"}},
        "3": {"class_type": "CLIPTextEncodeSD3", "inputs": {
            "clip_l": "owl", "clip_g": "a brass owl, studio light", "t5xxl": "", "empty_padding": "none",
            "clip": ["2", 0]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, lowres", "clip": ["2", 0]}},
        "5": {"class_type": "CFGGuider", "inputs": {
            "model": ["1", 0], "positive": ["3", 0], "negative": ["4", 0], "cfg": 5.0}},
        "6": {"class_type": "RandomNoise", "inputs": {"noise_seed": 77}},
        "7": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "dpmpp_2m"}},
        "8": {"class_type": "BasicScheduler", "inputs": {"scheduler": "beta", "steps": 30, "denoise": 1.0,
                                                         "model": ["1", 0]}},
        "9": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 768, "height": 1344, "batch_size": 1}},
        "10": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["6", 0], "guider": ["5", 0], "sampler": ["7", 0], "sigmas": ["8", 0],
            "latent_image": ["9", 0]}},
    }  # fmt: skip
    assert read_comfyui_graph(graph) == {
        "prompt": "a brass owl, studio light",  # T5's text empty: CLIP-G's
        "negative_prompt": "blurry, lowres",
        "seed": 77,
        "steps": 30,
        "guidance": 5.0,
        "sampler": "dpmpp_2m beta",
        "width": 768,
        "height": 1344,
        "model_name": "sd3.5_medium.safetensors",
        "extra": {"Text encoders": "clip_g.safetensors, clip_l.safetensors"},
    }


def test_sd3_with_the_older_sampler_custom():
    graph = copy.deepcopy(SD35)
    graph["13"]["inputs"]["shift"] = 6.0
    graph["20"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "heun"}}
    graph["21"] = {
        "class_type": "BasicScheduler",
        "inputs": {"scheduler": "simple", "steps": 12, "denoise": 1.0, "model": ["13", 0]},
    }
    sampler_inputs = {"model": ["13", 0], "add_noise": True, "noise_seed": 8, "cfg": 3.0}
    sampler_inputs.update(positive=["16", 0], negative=["40", 0], sampler=["20", 0], sigmas=["21", 0])
    graph["3"] = {"class_type": "SamplerCustom", "inputs": {**sampler_inputs, "latent_image": ["135", 0]}}
    fields = read_comfyui_graph(graph)
    assert (fields["seed"], fields["steps"], fields["sampler"], fields["guidance"]) == (
        8,
        12,
        "heun simple",
        3.0,
    )
    assert (fields["prompt"], fields["negative_prompt"]) == ("an owl made of brass gears", "")
    assert fields["extra"]["Shift"] == 6.0


def comfyui_png(path, chunks: dict) -> str:
    """A PNG as ComfyUI's SaveImage writes it: each chunk a tEXt of the JSON."""
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, json.dumps(value))
    Image.new("RGB", (64, 48)).save(path, pnginfo=info, compress_level=4)
    return path


def test_png_round_trip_through_the_gallery_reader(tmp_path):
    path = comfyui_png(tmp_path / "ComfyUI_00001_.png", {"prompt": FLUX_DEV, "workflow": flux_dev_workflow()})
    meta = read_metadata(path)
    assert meta.source == "comfyui"
    assert (meta.prompt, meta.negative_prompt, meta.seed, meta.steps) == (FLUX_PROMPT, "", 3141592653, 24)
    assert (meta.sampler, meta.schedule, meta.guidance) == ("Euler", None, 3.5)
    assert (meta.width, meta.height, meta.model_name) == (1152, 896, "flux1-dev.safetensors")
    assert meta.loras == (NetworkRef(name="flux_realism", weight=0.8),)
    assert meta.extra == FLUX_DEV_FIELDS["extra"]
    request = meta.reuse(GenerationRequest(prompt="", guidance=7.0, sampler="Euler a"), "all")
    assert request.prompt == f"{FLUX_PROMPT}, <lora:flux_realism:0.8>"
    assert (request.seed, request.steps, request.guidance) == (3141592653, 24, 3.5)
    assert (request.sampler, request.width, request.height) == ("Euler", 1152, 896)


def test_png_with_only_the_workflow_chunk(tmp_path):
    meta = read_metadata(comfyui_png(tmp_path / "sd35.png", {"workflow": sd35_workflow()}))
    assert meta.source == "comfyui"
    assert (meta.prompt, meta.negative_prompt, meta.seed, meta.steps, meta.guidance) == (
        "an owl made of brass gears",
        "",
        714,
        40,
        4.5,
    )
    assert (meta.sampler, meta.schedule, meta.width, meta.height) == ("Euler", "SGM Uniform", 1024, 1024)
    assert meta.extra["Shift"] == 3.0


def test_unknown_nodes_still_read_what_they_can():
    graph = copy.deepcopy(FLUX_DEV)
    graph["22"] = {"class_type": "SomePack.FancyGuider", "inputs": {"model": ["30", 0], "cond": ["26", 0]}}
    graph["16"] = {"class_type": "SomePack.SamplerPicker", "inputs": {"choice": 3}}
    graph["25"]["inputs"]["noise_seed"] = ["99", 0]  # a link to a node that is not in the graph
    graph["30"]["inputs"]["max_shift"] = "lots"
    fields = read_comfyui_graph(graph)
    assert fields == {
        "prompt": FLUX_PROMPT,  # found upstream of the unknown guider
        "steps": 24,
        "guidance": 3.5,
        "width": 1152,
        "height": 896,
        "model_name": "flux1-dev.safetensors",  # the scheduler's model
        "loras": (NetworkRef(name="flux_realism", weight=0.8),),
        "extra": {
            "Distilled CFG Scale": 3.5,
            "Base shift": 0.5,
            "Text encoders": "t5xxl_fp16.safetensors, clip_l.safetensors",
        },
    }  # no seed behind a dangling link, no sampler from an unknown node, no max shift from "lots"


def _mangled(value, rng):
    if isinstance(value, dict):
        return {key: _mangled(item, rng) for key, item in value.items() if rng.random() > 0.1}
    if isinstance(value, list):
        return [_mangled(item, rng) for item in value if rng.random() > 0.1]
    return rng.choice([value, value, None, "x", -1, 1.5, [], {}, ["nowhere", 0], True])


def test_mangled_graphs_never_raise():
    rng = random.Random(1234)
    for _ in range(300):
        for graph in (FLUX_DEV, SD35, FLUX_GGUF_TEXT_ENCODE_FLUX):
            assert isinstance(read_comfyui_graph(_mangled(graph, rng)), dict)
        for workflow in (flux_dev_workflow(), sd35_workflow()):
            assert isinstance(read_flow_workflow(_mangled(workflow, rng)), dict)


def test_sd_graphs_are_left_to_the_sd_reader():
    sd = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 1, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["6", 0],
            "latent_image": ["5", 0]}},
    }  # fmt: skip
    fields = read_comfyui_graph(sd)
    assert fields == read_comfyui_prompt(sd)
    assert "extra" not in fields and fields["negative_prompt"] == "a cat"  # as before this module
    assert (
        read_flow_workflow({"nodes": [_node(3, "KSampler", [1, "fixed", 20, 7.0, "euler", "normal", 1])]})
        == {}
    )


def test_a_png_with_junk_workflow_ids_reads_without_raising(tmp_path):
    """Node ids or links that are objects (hand-edited or another tool's graph): no crash, no source."""
    junk = [
        {"nodes": [{"id": {}, "type": "KSampler", "widgets_values": [1]}], "links": [[{}, 1, 0, 2, 0, "M"]]},
        {"nodes": [{"id": [1], "type": "KSampler"}], "links": [["a"]]},
    ]
    for number, workflow in enumerate(junk):
        info = PngImagePlugin.PngInfo()
        info.add_text("workflow", json.dumps(workflow))
        path = tmp_path / f"junk-{number}.png"
        Image.new("RGB", (8, 8)).save(path, pnginfo=info)
        metadata = read_metadata(path)
        assert metadata.source is None and (metadata.width, metadata.height) == (8, 8)
