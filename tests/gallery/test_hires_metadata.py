"""Hires fix in metadata: A1111's ``Hires …`` keys written and read (real A1111 / Forge strings), our
JSON exact, ComfyUI's two-sampler graphs, and reuse restoring every field."""

from __future__ import annotations

import io
import json

from PIL import Image, PngImagePlugin

from ldm_studio.engine.hires_request import HiresFix
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import encode_png, format_parameters, metadata_from_chunks, read_metadata

A1111_SCALE = (
    "masterpiece, a castle on a hill\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234567, Size: 512x512, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.5, "
    "Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, Version: v1.6.0"
)
A1111_RESIZE = (
    "a castle\n"
    "Steps: 30, Sampler: Euler a, Schedule type: Automatic, CFG scale: 6.5, Seed: 42, Size: 512x768, "
    "Model hash: 0123456789, Model: dreamshaper_8, Denoising strength: 0.35, Clip skip: 2, "
    'Hires sampler: DPM++ 2M, Hires prompt: "a castle, sharp details", Hires negative prompt: ugly, '
    "Hires CFG Scale: 5, Hires resize: 1024x1024, Hires upscaler: R-ESRGAN 4x+, Version: f2.0.1v1.10.1"
)
A1111_IMG2IMG = (
    "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Denoising strength: 0.75"
)


def chunks_of(text: str) -> dict[str, str]:
    return {"parameters": text}


def test_a1111_scale_string_reads_as_hires():
    metadata = metadata_from_chunks(chunks_of(A1111_SCALE), (1024, 1024))
    assert metadata.source == "a1111"
    assert metadata.hires == HiresFix(scale=2.0, steps=10, strength=0.5, upscaler="Latent")
    request = metadata.to_request()
    assert (request.width, request.height, request.steps, request.sampler) == (
        512,
        512,
        20,
        "DPM++ 2M Karras",
    )
    assert request.hires == metadata.hires


def test_forge_string_with_every_hires_key():
    hires = metadata_from_chunks(chunks_of(A1111_RESIZE), (1024, 1024)).hires
    assert hires == HiresFix(
        resize=(1024, 1024),
        steps=0,
        strength=0.35,
        upscaler="R-ESRGAN 4x+",
        sampler="DPM++ 2M",
        prompt="a castle, sharp details",
        negative_prompt="ugly",
        guidance=5.0,
    )


def test_img2img_strength_alone_is_not_hires():
    assert metadata_from_chunks(chunks_of(A1111_IMG2IMG), (512, 512)).hires is None


def test_written_the_a1111_way_and_read_back():
    request = GenerationRequest(
        "a castle", "blurry", seed=5, steps=20, guidance=7.0, width=512, height=512, sampler="Euler a",
        hires=HiresFix(2.0, steps=10, strength=0.5, upscaler="Latent"),
    )  # fmt: skip
    text = format_parameters(request, model_name="m", model_hash="abc")
    assert text.endswith(
        "Size: 512x512, Model hash: abc, Model: m, Denoising strength: 0.5, "
        "Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent"
    )
    every = request.replace(
        hires=HiresFix(resize=(1024, 0), steps=0, strength=0.45, upscaler="Lanczos", sampler="DDIM",
                       prompt="a castle, detailed", negative_prompt="ugly", guidance=5.5)
    )  # fmt: skip
    text = format_parameters(every, model_name="m", model_hash="abc")
    assert (
        'Denoising strength: 0.45, Hires sampler: DDIM, Hires prompt: "a castle, detailed", '
        "Hires negative prompt: ugly, Hires CFG Scale: 5.5, Hires resize: 1024x0, Hires upscaler: Lanczos"
    ) in text
    assert "Hires steps" not in text  # A1111 leaves out 0 (= as many as the first pass)
    assert metadata_from_chunks(chunks_of(text), (1024, 1024)).hires == every.hires


def test_our_png_keeps_the_request_exactly_and_reuse_restores_it(tmp_path):
    request = GenerationRequest(
        "a castle", seed=5, steps=12, width=512, height=512,
        hires=HiresFix(1.5, steps=4, strength=0.42, upscaler="Latent (bicubic antialiased)", guidance=4.0),
    )  # fmt: skip
    path = tmp_path / "ours.png"
    path.write_bytes(encode_png(Image.new("RGB", (768, 768)), request, model_name="m", model_hash="h"))
    metadata = read_metadata(path)
    assert metadata.source == "ldm-studio" and metadata.hires == request.hires
    assert metadata.reuse(GenerationRequest(""), "all") == request
    del metadata.raw["ldm-studio"]  # only A1111's text left: still every hires field
    assert metadata_from_chunks(metadata.raw, (768, 768)).hires == request.hires


def test_reuse_turns_hires_off_for_an_image_without_it():
    base = GenerationRequest("old", hires=HiresFix())
    reused = metadata_from_chunks(chunks_of(A1111_IMG2IMG), (512, 512)).reuse(base, "all")
    assert reused.hires is None
    prompt_only = metadata_from_chunks(chunks_of(A1111_IMG2IMG), (512, 512)).reuse(base, "prompt")
    assert prompt_only.hires == HiresFix()  # reusing the prompt alone leaves the settings be


def test_reusing_a_hires_image_over_a_source_image_goes_back_to_text_to_image():
    base = GenerationRequest("old", init_image="photo.png", strength=0.6)
    reused = metadata_from_chunks(chunks_of(A1111_SCALE), (1024, 1024)).reuse(base, "all")
    assert reused.init_image == "" and reused.hires.strength == 0.5


# ---- ComfyUI ----------------------------------------------------------------------------------------


def comfy_graph(enlarge: dict[str, dict]) -> dict:
    """A hires-fix graph: KSampler (4) at 512 -> enlargement nodes -> KSampler (20) at the larger size.
    The second sampler comes first in the file, as ComfyUI's ids often put it."""
    graph = {
        "20": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 99, "steps": 12, "cfg": 5.0, "sampler_name": "dpmpp_2m", "scheduler": "karras",
                "denoise": 0.45, "model": ["1", 0], "positive": ["6", 0], "negative": ["7", 0],
                "latent_image": ["10", 0],
            },
        },
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "4": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 99, "steps": 25, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
                "denoise": 1.0, "model": ["1", 0], "positive": ["6", 0], "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a castle", "clip": ["1", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
    }  # fmt: skip
    graph.update(enlarge)
    return graph


def comfy_chunks(graph: dict) -> dict[str, str]:
    return {"prompt": json.dumps(graph)}


def test_comfyui_latent_upscale_by():
    graph = comfy_graph(
        {
            "10": {
                "class_type": "LatentUpscaleBy",
                "inputs": {"upscale_method": "nearest-exact", "scale_by": 2.0, "samples": ["4", 0]},
            }
        }
    )
    metadata = metadata_from_chunks(comfy_chunks(graph), (1024, 1024))
    assert (metadata.steps, metadata.width, metadata.guidance, metadata.sampler) == (25, 512, 7.0, "Euler")
    assert metadata.hires == HiresFix(
        scale=2.0, steps=12, strength=0.45, upscaler="Latent (nearest-exact)", sampler="DPM++ 2M Karras",
        guidance=5.0,
    )  # fmt: skip
    assert metadata.to_request().hires == metadata.hires


def test_comfyui_model_upscale_then_scale_down():
    graph = comfy_graph(
        {
            "10": {"class_type": "VAEEncode", "inputs": {"pixels": ["12", 0], "vae": ["1", 2]}},
            "12": {
                "class_type": "ImageScaleBy",
                "inputs": {"upscale_method": "lanczos", "scale_by": 0.5, "image": ["13", 0]},
            },
            "13": {
                "class_type": "ImageUpscaleWithModel",
                "inputs": {"upscale_model": ["14", 0], "image": ["15", 0]},
            },
            "14": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x-UltraSharp.pth"}},
            "15": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        }
    )
    hires = metadata_from_chunks(comfy_chunks(graph), (1024, 1024)).hires
    assert (hires.upscaler, hires.scale, hires.steps, hires.strength) == ("4x-UltraSharp", 2.0, 12, 0.45)


def test_comfyui_image_scale_to_a_size():
    graph = comfy_graph(
        {
            "10": {"class_type": "VAEEncode", "inputs": {"pixels": ["12", 0], "vae": ["1", 2]}},
            "12": {
                "class_type": "ImageScale",
                "inputs": {
                    "upscale_method": "nearest-exact",
                    "width": 768,
                    "height": 1024,
                    "crop": "disabled",
                    "image": ["15", 0],
                },
            },
            "15": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        }
    )
    hires = metadata_from_chunks(comfy_chunks(graph), (768, 1024)).hires
    assert (hires.upscaler, hires.resize) == ("Nearest", (768, 1024))


def test_a_plain_comfyui_graph_has_no_hires():
    graph = comfy_graph({})
    graph["20"]["inputs"]["latent_image"] = ["5", 0]  # two independent samplers: not a hires fix
    assert metadata_from_chunks(comfy_chunks(graph), (512, 512)).hires is None


def test_a1111_png_file_on_disk(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111_SCALE)
    buffer = io.BytesIO()
    Image.new("RGB", (1024, 1024)).save(buffer, format="PNG", pnginfo=info)
    path = tmp_path / "00001-1234567.png"
    path.write_bytes(buffer.getvalue())
    metadata = read_metadata(path)
    assert metadata.hires.scale == 2.0 and metadata.width == 512


def test_a_fallen_back_hires_schedule_is_written_as_a1111_does():
    request = GenerationRequest("a castle", steps=20, sampler="Euler", schedule="SGM Uniform")
    fallen = request.replace(hires=HiresFix(2.0, steps=10, strength=0.5, sampler="LCM"))
    text = format_parameters(fallen, model_name="m", model_hash="abc")
    assert "Schedule type: SGM Uniform" in text
    assert "Hires sampler: LCM, Hires schedule type: Automatic, Hires upscale: 2" in text
    assert metadata_from_chunks(chunks_of(text), (1024, 1024)).hires == fallen.hires
    kept = request.replace(hires=HiresFix(2.0, steps=10, strength=0.5, sampler="DDIM"))  # takes it
    assert "Hires schedule type" not in format_parameters(kept, model_name="m", model_hash="abc")
    # A1111's "Hires sampler: DPM++ 2M" beside "Schedule type: Karras" is read as DPM++ 2M Karras,
    # which runs Karras spacing by its name: no fallback to write
    text = (
        "a castle\nSteps: 20, Sampler: Euler, Schedule type: Karras, Seed: 1, Size: 512x512, "
        "Denoising strength: 0.5, Hires sampler: DPM++ 2M, Hires upscale: 2, Hires upscaler: Latent"
    )
    pasted = metadata_from_chunks(chunks_of(text), (1024, 1024))
    assert pasted.hires.sampler == "DPM++ 2M Karras"
    again = request.replace(schedule="Karras", hires=pasted.hires)
    assert "Hires schedule type" not in format_parameters(again, model_name="m", model_hash="abc")
