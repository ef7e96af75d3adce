"""LoRAs, embeddings and clip skip in image metadata: A1111's keys, ComfyUI's nodes, InvokeAI's lists."""

from __future__ import annotations

import json

from PIL import Image

from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import encode_png, parse_parameters, read_metadata
from ldm_studio.gallery.networks import NetworkRef, lora_tag, parse_hashes, with_lora_tags
from tests.gallery.test_metadata import make_request, png_with_chunks

A1111_TEXT = (
    "masterpiece, (red fox:1.2), <lora:fox_style:0.8>, fox-embed\n"
    "Negative prompt: blurry\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: 6ce0161689, "
    'Model: v1-5, Clip skip: 2, Lora hashes: "fox_style: 7C6BAD76EB54, detail: 0123456789ab", '
    'TI hashes: "fox-embed: aabbccddeeff", Version: v1.10.1'
)


def test_a1111_clip_skip_and_hashes_are_read():
    parsed = parse_parameters(A1111_TEXT)
    assert parsed["clip_skip"] == 2
    assert parsed["loras"] == (
        NetworkRef("fox_style", "lora", "7c6bad76eb54"),
        NetworkRef("detail", "lora", "0123456789ab"),
    )
    assert parsed["embeddings"] == (NetworkRef("fox-embed", "embedding", "aabbccddeeff"),)
    # kept as written too, for the metadata view
    assert parsed["extra"]["Clip skip"] == "2"


def test_a1111_png_reuses_clip_skip_and_keeps_the_tags_in_the_prompt(tmp_path):
    meta = read_metadata(png_with_chunks(tmp_path / "a.png", {"parameters": A1111_TEXT}))
    assert meta.source == "a1111"
    request = meta.reuse(GenerationRequest(""), "all")
    assert request.clip_skip == 2
    assert request.prompt == "masterpiece, (red fox:1.2), <lora:fox_style:0.8>, fox-embed"


def test_our_png_writes_the_a1111_keys_and_reads_them_back(tmp_path):
    request = make_request("a fox <lora:fox_style:0.8>", clip_skip=2)
    extra = {
        "loras": [{"name": "fox_style", "hash": "0123456789ab", "weight": 0.8}],
        "embeddings": [{"name": "fox-embed", "hash": "aabbccddeeff"}],
    }
    data = encode_png(Image.new("RGB", (8, 8)), request, model_name="m", model_hash="h", extra=extra)
    path = tmp_path / "ours.png"
    path.write_bytes(data)
    meta = read_metadata(path)
    text = meta.raw["parameters"]
    assert "Clip skip: 2" in text
    assert 'Lora hashes: "fox_style: 0123456789ab"' in text
    assert 'TI hashes: "fox-embed: aabbccddeeff"' in text
    assert "[{" not in text  # the record's lists never leak into the A1111 line as Python reprs
    assert meta.source == "ldm-studio" and meta.clip_skip == 2
    assert meta.loras == (NetworkRef("fox_style", "lora", "0123456789ab", 0.8),)
    assert meta.reuse(GenerationRequest(""), "all") == request
    a1111 = parse_parameters(text)
    assert a1111["clip_skip"] == 2 and a1111["loras"][0].hash == "0123456789ab"


def test_clip_skip_1_is_left_out_as_a1111_does():
    text = encode_png(Image.new("RGB", (8, 8)), make_request("x"), model_name="m", model_hash="h")
    assert b"Clip skip" not in text


COMFY_LORA_GRAPH = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
    "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "styles\\fox_style.safetensors",
           "strength_model": 0.8, "strength_clip": 0.8, "model": ["4", 0], "clip": ["4", 1]}},
    "11": {"class_type": "LoraLoader", "inputs": {"lora_name": "detail.safetensors",
           "strength_model": 1.0, "strength_clip": 0.5, "model": ["10", 0], "clip": ["10", 1]}},
    "12": {"class_type": "CLIPSetLastLayer", "inputs": {"stop_at_clip_layer": -2, "clip": ["11", 1]}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a fox", "clip": ["12", 0]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["12", 0]}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20, "cfg": 7.0, "sampler_name": "euler",
          "scheduler": "normal", "denoise": 1.0, "model": ["11", 0], "positive": ["6", 0],
          "negative": ["7", 0], "latent_image": ["5", 0]}},
}  # fmt: skip


def test_comfyui_lora_loaders_and_clip_layer_become_tags_and_clip_skip(tmp_path):
    meta = read_metadata(png_with_chunks(tmp_path / "c.png", {"prompt": json.dumps(COMFY_LORA_GRAPH)}))
    assert meta.source == "comfyui"
    assert meta.clip_skip == 2
    assert [(ref.name, ref.weight, ref.unet_weight) for ref in meta.loras] == [
        ("fox_style", 0.8, None),
        ("detail", 0.5, 1.0),
    ]
    request = meta.reuse(GenerationRequest(""), "all")
    assert request.prompt == "a fox, <lora:fox_style:0.8> <lora:detail:0.5:1>"
    assert request.clip_skip == 2
    assert meta.prompt == "a fox"  # the image's own text is shown as it was written


def test_comfyui_workflow_skips_bypassed_lora_nodes(tmp_path):
    workflow = {
        "nodes": [
            {"id": 3, "type": "KSampler", "inputs": [{"name": "positive", "link": 1}],
             "widgets_values": [987, "fixed", 12, 4.0, "euler", "normal", 1.0]},
            {"id": 6, "type": "CLIPTextEncode", "inputs": [], "widgets_values": ["red car"]},
            {"id": 8, "type": "LoraLoader", "mode": 0, "widgets_values": ["car.safetensors", 0.7, 0.7]},
            {"id": 9, "type": "LoraLoader", "mode": 4, "widgets_values": ["off.safetensors", 1.0, 1.0]},
            {"id": 10, "type": "CLIPSetLastLayer", "widgets_values": [-3]},
        ],
        "links": [[1, 6, 0, 3, 1, "CONDITIONING"]],
    }  # fmt: skip
    meta = read_metadata(png_with_chunks(tmp_path / "w.png", {"workflow": json.dumps(workflow)}))
    assert [ref.name for ref in meta.loras] == ["car"]
    assert meta.clip_skip == 3
    assert meta.reuse(GenerationRequest(""), "prompt").prompt == "red car, <lora:car:0.7>"


def test_invokeai_loras_and_clip_skip(tmp_path):
    record = {
        "positive_prompt": "castle",
        "seed": 3,
        "clip_skip": 1,
        "loras": [
            {"model": {"key": "k", "name": "stone", "hash": "blake3:ff", "base": "sd-1"}, "weight": 0.6},
            {"lora": {"model_name": "moss", "base_model": "sd-1"}, "weight": 1},
        ],
    }
    meta = read_metadata(png_with_chunks(tmp_path / "i.png", {"invokeai_metadata": json.dumps(record)}))
    assert meta.clip_skip == 2  # one layer skipped in InvokeAI's counting
    request = meta.reuse(GenerationRequest(""), "all")
    assert request.prompt == "castle, <lora:stone:0.6> <lora:moss:1>"


def test_tags_already_in_the_prompt_are_not_added_twice():
    refs = (NetworkRef("fox", weight=0.5), NetworkRef("owl", weight=1.0))
    assert with_lora_tags("a <lora:Fox:0.5>", refs) == "a <lora:Fox:0.5>, <lora:owl:1>"
    assert with_lora_tags("", refs[1:]) == "<lora:owl:1>"
    assert lora_tag("x", 1.0, 1.0) == "<lora:x:1>"


def test_odd_hash_lists_are_skipped_not_raised():
    assert parse_hashes("", "lora") == ()
    assert parse_hashes("no colon, : , a: not-hex, b: 0123456789", "lora") == (
        NetworkRef("b", "lora", "0123456789"),
    )
