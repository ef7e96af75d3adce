"""PNG metadata: A1111 text round trips, our JSON chunk, and other tools' chunks."""

from __future__ import annotations

import json
import random

import pytest
from PIL import Image, PngImagePlugin

from ldm_studio import __version__
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import (
    OUR_CHUNK,
    encode_png,
    format_parameters,
    image_request,
    parse_parameters,
    read_metadata,
)

TRICKY_PROMPTS = [
    "a cat",
    "a cat, sitting on a mat: oil painting, (masterpiece:1.2)",
    'she said "hello", then left',
    "first line\nsecond line, with comma\n\nafter a blank line",
    "ünïcödé 猫 🐱 — em dash, «quotes»",
    "trailing newline\n",
    "\nleading newline",
    "  spaced  ",
    'Steps: 5, Sampler: "fake"',  # looks like a settings line but is the prompt
    "back\\slash and \t tab",
    "",
]


def make_request(prompt: str, negative: str = "", **changes) -> GenerationRequest:
    values = dict(prompt=prompt, negative_prompt=negative, seed=965400086, steps=20, guidance=7.0)
    values.update(width=512, height=512, sampler="Euler a")
    values.update(changes)
    return GenerationRequest(**values)


def assert_parsed_matches(parsed: dict, request: GenerationRequest, model_name: str, model_hash: str):
    assert parsed["prompt"] == request.prompt
    assert parsed["negative_prompt"] == request.negative_prompt
    assert parsed["steps"] == request.steps
    assert parsed["sampler"] == request.sampler
    assert parsed["guidance"] == request.guidance
    assert parsed["seed"] == request.seed
    assert (parsed["width"], parsed["height"]) == (request.width, request.height)
    assert parsed.get("model_name", "") == model_name
    assert parsed.get("model_hash", "") == model_hash


def test_format_matches_the_a1111_layout():
    text = format_parameters(make_request("a cat", "blurry"), model_name="name", model_hash="45dee52b")
    assert text == (
        "a cat\nNegative prompt: blurry\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, "
        "Model hash: 45dee52b, Model: name"
    )


def test_empty_negative_prompt_line_is_left_out():
    text = format_parameters(make_request("a cat"), model_name="m", model_hash="h")
    assert "Negative prompt" not in text
    assert text.splitlines()[0] == "a cat"


def test_values_with_commas_colons_newlines_are_json_quoted():
    request = make_request("p", sampler="odd, name")
    text = format_parameters(request, model_name="a: b", model_hash="h", extra={"Note": "x\ny"})
    settings = text.splitlines()[-1]
    assert 'Sampler: "odd, name"' in settings
    assert 'Model: "a: b"' in settings
    assert 'Note: "x\\ny"' in settings


@pytest.mark.parametrize("prompt", TRICKY_PROMPTS)
@pytest.mark.parametrize("negative", ["", "blurry, low quality", "multi\nline: negative ü", " leading space"])
def test_a1111_text_round_trips_tricky_prompts(prompt, negative):
    request = make_request(prompt, negative, guidance=7.5, sampler="DPM++ 2M Karras")
    text = format_parameters(request, model_name="my model, v2", model_hash="abc123")
    assert_parsed_matches(parse_parameters(text), request, "my model, v2", "abc123")


def test_a1111_round_trip_random_strings():
    alphabet = list("abc XYZ,:;\"'\\\n\t()[]{}=<>|/é猫🐱") + ["Negative", "Steps: 3", ", "]
    rng = random.Random(1234)
    for _ in range(300):
        prompt = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        negative = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        if any(line.startswith("Negative prompt:") for line in prompt.split("\n")):
            continue  # the one case the A1111 format cannot express (documented)
        request = make_request(prompt, negative, seed=rng.randint(0, 2**32 - 1), guidance=rng.uniform(0, 30))
        extra = {"Note": "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 15)))}
        text = format_parameters(request, model_name="m", model_hash="h", extra=extra)
        parsed = parse_parameters(text)
        assert_parsed_matches(parsed, request, "m", "h")
        assert parsed["extra"] == extra


def test_extra_settings_round_trip_as_text():
    extra = {"Parent": "2024-01-01/a, b.png", "Branch step": 12, "Strength": 0.35}
    text = format_parameters(make_request("p"), model_name="m", model_hash="h", extra=extra)
    assert parse_parameters(text)["extra"] == {
        "Parent": "2024-01-01/a, b.png",
        "Branch step": "12",
        "Strength": "0.35",
    }


def test_parses_text_written_by_a1111():
    text = (
        "masterpiece, 1girl, (detailed:1.2)\n"
        "Negative prompt: lowres, bad anatomy\n"
        "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234, "
        'Size: 768x512, Model hash: 6ce0161689, Model: v1-5, Lora hashes: "add_detail: 7c6bad76eb54", '
        "Version: v1.10.1"
    )
    parsed = parse_parameters(text)
    assert parsed["prompt"] == "masterpiece, 1girl, (detailed:1.2)"
    assert parsed["negative_prompt"] == "lowres, bad anatomy"
    assert (parsed["steps"], parsed["guidance"], parsed["seed"]) == (28, 6.5, 1234)
    assert (parsed["width"], parsed["height"]) == (768, 512)
    assert parsed["extra"]["Lora hashes"] == "add_detail: 7c6bad76eb54"
    assert parsed["extra"]["Version"] == "v1.10.1"


def test_png_round_trips_every_field(tmp_path):
    request = make_request(
        'a "cat", on a mat:\nüñï 🐱', "blur,\nnoise", seed=4242, steps=7, guidance=3.25, width=64, height=48
    ).replace(sampler="UniPC", model="/models/tiny", extras={"eta": 0.5})
    extra = {"parent": "2024-01-01/x.png", "branch_step": 3}
    path = tmp_path / "image.png"
    image = Image.new("RGB", (64, 48), (10, 200, 30))
    path.write_bytes(encode_png(image, request, model_name="tiny", model_hash="0123456789", extra=extra))

    meta = read_metadata(path)
    assert meta.source == "ldm-studio"
    assert meta.request == request
    assert (meta.prompt, meta.negative_prompt, meta.seed, meta.steps) == (
        request.prompt,
        "blur,\nnoise",
        4242,
        7,
    )
    assert (meta.sampler, meta.guidance, meta.width, meta.height) == ("UniPC", 3.25, 64, 48)
    assert (meta.model_name, meta.model_hash) == ("tiny", "0123456789")
    assert meta.extra == extra
    assert meta.created is not None
    record = json.loads(meta.raw[OUR_CHUNK])
    assert record["app_version"] == __version__
    assert record["request"] == request.to_dict()
    # The A1111 chunk alone tells the same story, for other tools.
    assert_parsed_matches(parse_parameters(meta.raw["parameters"]), request, "tiny", "0123456789")
    with Image.open(path) as reopened:
        assert reopened.convert("RGB").getpixel((5, 5)) == (10, 200, 30)


def png_with_chunks(path, chunks: dict[str, str], size=(40, 24)):
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", size).save(path, pnginfo=info)
    return path


def test_reads_a1111_png(tmp_path):
    text = (
        "a fox, snow\nNegative prompt: blurry\nSteps: 30, Sampler: Euler, CFG scale: 5, Seed: 77, Size: 40x24"
    )
    meta = read_metadata(png_with_chunks(tmp_path / "a.png", {"parameters": text}))
    assert meta.source == "a1111"
    assert (meta.prompt, meta.negative_prompt, meta.seed, meta.steps, meta.guidance) == (
        "a fox, snow",
        "blurry",
        77,
        30,
        5.0,
    )
    assert meta.request is None
    assert meta.reuse(GenerationRequest(prompt="old", batch_size=2), "all") == GenerationRequest(
        prompt="a fox, snow", negative_prompt="blurry", seed=77, steps=30, guidance=5.0, width=40,
        height=24, sampler="Euler", batch_size=2,
    )  # fmt: skip


COMFY_PROMPT = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": ["10", 0],
            "steps": 25,
            "cfg": 6.5,
            "sampler_name": "euler_ancestral",
            "scheduler": "normal",
            "positive": ["11", 0],
            "negative": ["7", 0],
            "model": ["4", 0],
            "latent_image": ["5", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 640, "height": 384, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse, at dusk", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "fog", "clip": ["4", 1]}},
    "10": {"class_type": "PrimitiveNode", "inputs": {"value": 123456}},
    "11": {
        "class_type": "ConditioningCombine",
        "inputs": {"conditioning_1": ["6", 0], "conditioning_2": ["6", 0]},
    },
}


def test_reads_comfyui_prompt_graph(tmp_path):
    meta = read_metadata(png_with_chunks(tmp_path / "c.png", {"prompt": json.dumps(COMFY_PROMPT)}))
    assert meta.source == "comfyui"
    assert (meta.prompt, meta.negative_prompt, meta.seed) == ("a lighthouse, at dusk", "fog", 123456)
    assert (meta.steps, meta.guidance, meta.sampler) == (25, 6.5, "Euler a")
    assert (meta.width, meta.height, meta.model_name) == (640, 384, "sd15.safetensors")


def test_reads_comfyui_workflow_when_prompt_is_missing(tmp_path):
    workflow = {
        "nodes": [
            {"id": 3, "type": "KSampler",
             "inputs": [{"name": "positive", "link": 1}, {"name": "negative", "link": 2}],
             "widgets_values": [987, "fixed", 12, 4.0, "dpmpp_2m", "karras", 1.0]},
            {"id": 6, "type": "CLIPTextEncode", "inputs": [], "widgets_values": ["red car"]},
            {"id": 7, "type": "CLIPTextEncode", "inputs": [], "widgets_values": ["rain"]},
        ],
        "links": [[1, 6, 0, 3, 1, "CONDITIONING"], [2, 7, 0, 3, 2, "CONDITIONING"]],
    }  # fmt: skip
    meta = read_metadata(png_with_chunks(tmp_path / "w.png", {"workflow": json.dumps(workflow)}))
    assert meta.source == "comfyui"
    assert (meta.prompt, meta.negative_prompt, meta.seed, meta.steps, meta.guidance) == (
        "red car",
        "rain",
        987,
        12,
        4.0,
    )


def test_reads_invokeai_metadata(tmp_path):
    record = {
        "positive_prompt": "castle on a hill",
        "negative_prompt": "people",
        "seed": 31337,
        "steps": 40,
        "cfg_scale": 8.5,
        "scheduler": "dpmpp_2m_k",
        "width": 512,
        "height": 768,
        "model": {"name": "dreamshaper", "hash": "blake3:abcd", "base": "sd-1"},
    }
    meta = read_metadata(png_with_chunks(tmp_path / "i.png", {"invokeai_metadata": json.dumps(record)}))
    assert meta.source == "invokeai"
    assert (meta.prompt, meta.negative_prompt, meta.seed, meta.steps) == (
        "castle on a hill",
        "people",
        31337,
        40,
    )
    assert (meta.guidance, meta.sampler, meta.width, meta.height) == (8.5, "DPM++ 2M Karras", 512, 768)
    assert (meta.model_name, meta.model_hash) == ("dreamshaper", "blake3:abcd")


def test_image_without_metadata_still_reads(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (33, 17)).save(path)
    meta = read_metadata(path)
    assert meta.source is None
    assert (meta.prompt, meta.seed, meta.width, meta.height) == ("", None, 33, 17)


def test_broken_chunks_do_not_raise(tmp_path):
    path = png_with_chunks(
        tmp_path / "odd.png",
        {OUR_CHUNK: "{not json", "prompt": "[1, 2]", "workflow": '{"nodes": 5}', "invokeai_metadata": "null"},
    )
    meta = read_metadata(path)
    assert meta.source is None
    assert meta.raw[OUR_CHUNK] == "{not json"


def test_our_broken_chunk_falls_back_to_parameters(tmp_path):
    path = png_with_chunks(
        tmp_path / "x.png", {OUR_CHUNK: '{"request": {"seed": -5}}', "parameters": "hi\nSteps: 3"}
    )
    meta = read_metadata(path)
    assert (meta.source, meta.prompt, meta.steps) == ("a1111", "hi", 3)


def test_unreadable_files_raise_a_clear_value_error(tmp_path):
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    with pytest.raises(ValueError, match="not an image"):
        read_metadata(not_image)
    with pytest.raises(ValueError, match="does not exist"):
        read_metadata(tmp_path / "missing.png")


def test_reuse_modes_and_batch_image_request():
    meta_request = make_request("sunset", "dark", seed=10, steps=9)
    base = make_request("old prompt", "old neg", seed=1, steps=30)
    from ldm_studio.gallery.metadata import ImageMetadata

    meta = ImageMetadata(prompt="sunset", negative_prompt="dark", seed=10, steps=9, request=meta_request)
    assert meta.reuse(base, "prompt") == base.replace(prompt="sunset", negative_prompt="dark")
    assert meta.reuse(base, "seed") == base.replace(seed=10)
    assert meta.reuse(base, "all") == meta_request
    with pytest.raises(ValueError):
        meta.reuse(base, "everything")
    batch = make_request("p", seed=2**32 - 1, batch_size=3)
    assert image_request(batch, 2) == batch.replace(seed=1, batch_size=1)
