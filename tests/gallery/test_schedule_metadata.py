"""The schedule type (and TCD's gamma) in PNG metadata: written as A1111 does, read back from ours,
A1111's newer and older texts, ComfyUI's scheduler input and InvokeAI's scheduler names."""

from __future__ import annotations

import json

import pytest
from PIL import Image, PngImagePlugin

from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import encode_png, read_metadata
from ldm_studio.gallery.parameters import format_parameters


def png_with_chunks(path, chunks):
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", (64, 64)).save(path, pnginfo=info)
    return path


def a1111_png(tmp_path, settings: str):
    return png_with_chunks(tmp_path / "a.png", {"parameters": f"a cat\n{settings}"})


def test_the_schedule_type_follows_the_sampler_and_automatic_is_left_out():
    request = GenerationRequest("a cat", seed=1, steps=8, sampler="Euler", schedule="SGM Uniform", guidance=1)
    line = format_parameters(request, model_name="m", model_hash="").splitlines()[-1]
    assert line.startswith("Steps: 8, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 1, Seed: 1")
    plain = format_parameters(request.replace(schedule="Automatic"), model_name="m", model_hash="")
    assert "Schedule type" not in plain
    assert "Sampler: DPM++ 2M Karras, CFG" in format_parameters(
        request.replace(sampler="DPM++ 2M Karras", schedule="Automatic"), model_name="m", model_hash=""
    )


def test_tcd_writes_its_gamma():
    request = GenerationRequest(
        "a cat", seed=1, steps=4, sampler="TCD", guidance=1, extras={"tcd_gamma": 0.5}
    )
    assert "Sampler: TCD, TCD gamma: 0.5, CFG scale: 1" in format_parameters(
        request, model_name="", model_hash=""
    )
    default = request.replace(extras={})
    assert "TCD gamma: 0.3" in format_parameters(default, model_name="", model_hash="")


def test_our_png_round_trips_schedule_and_gamma(tmp_path):
    request = GenerationRequest(
        "a cat", seed=5, steps=4, sampler="TCD", guidance=1, width=64, height=64, extras={"tcd_gamma": 0.45}
    )
    path = tmp_path / "ours.png"
    path.write_bytes(encode_png(Image.new("RGB", (64, 64)), request, model_name="m", model_hash=""))
    meta = read_metadata(path)
    assert meta.to_request() == request
    karras = request.replace(sampler="DPM++ 2M", schedule="Karras", extras={})
    path.write_bytes(encode_png(Image.new("RGB", (64, 64)), karras, model_name="m", model_hash=""))
    assert (read_metadata(path).schedule, read_metadata(path).to_request().schedule) == ("Karras", "Karras")


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        # A1111 1.9+: sampler and schedule apart
        ("Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7", ("DPM++ 2M", "Karras")),
        ("Steps: 8, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 1", ("Euler", "SGM Uniform")),
        ("Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7", ("Euler a", "Automatic")),
        (
            "Steps: 20, Sampler: DPM++ 2M SDE, Schedule type: Exponential, CFG scale: 7",
            ("DPM++ 2M SDE", "Exponential"),
        ),
        # a schedule we do not have (A1111's Align Your Steps) falls back to the sampler's own
        (
            "Steps: 20, Sampler: DPM++ 2M, Schedule type: Align Your Steps, CFG scale: 7",
            ("DPM++ 2M", "Automatic"),
        ),
        # a pairing the sampler cannot take: LCM only runs its own schedule
        ("Steps: 4, Sampler: LCM, Schedule type: Karras, CFG scale: 1.5", ("LCM", "Automatic")),
        # older A1111: one name
        ("Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7", ("DPM++ 2M Karras", "Automatic")),
        ("Steps: 20, Sampler: DPM++ 2M SDE Karras, CFG scale: 7", ("DPM++ 2M SDE Karras", "Automatic")),
    ],
)
def test_a1111_texts_give_sampler_and_schedule(tmp_path, settings, expected):
    meta = read_metadata(a1111_png(tmp_path, settings))
    assert (meta.sampler, meta.schedule) == expected
    request = meta.to_request()
    assert (request.sampler, request.schedule) == expected


def test_an_a1111_tcd_gamma_is_read_back(tmp_path):
    meta = read_metadata(a1111_png(tmp_path, "Steps: 4, Sampler: TCD, TCD gamma: 0.6, CFG scale: 1, Seed: 3"))
    assert meta.to_request().extras == {"tcd_gamma": 0.6}
    odd = read_metadata(a1111_png(tmp_path, "Steps: 4, Sampler: TCD, TCD gamma: lots, CFG scale: 1"))
    assert odd.to_request().extras == {}


def comfy_prompt(sampler_name: str, scheduler: str) -> str:
    return json.dumps(
        {
            "3": {
                "class_type": "KSampler",
                "inputs": {
                    "seed": 7,
                    "steps": 4,
                    "cfg": 1.0,
                    "sampler_name": sampler_name,
                    "scheduler": scheduler,
                },
            }
        }
    )


@pytest.mark.parametrize(
    ("sampler_name", "scheduler", "expected"),
    [
        ("euler", "sgm_uniform", ("Euler", "SGM Uniform")),
        ("lcm", "normal", ("LCM", "Automatic")),
        ("dpmpp_2m", "karras", ("DPM++ 2M Karras", "Automatic")),  # as before: one of our names
        ("dpmpp_2m_sde", "exponential", ("DPM++ 2M SDE", "Exponential")),
        ("euler", "beta", ("Euler", "Beta")),
    ],
)
def test_comfyui_schedulers_become_schedule_types(tmp_path, sampler_name, scheduler, expected):
    meta = read_metadata(
        png_with_chunks(tmp_path / "c.png", {"prompt": comfy_prompt(sampler_name, scheduler)})
    )
    assert meta.source == "comfyui"
    assert (meta.sampler, meta.schedule or "Automatic") == expected


def test_invokeai_lcm_and_tcd_names(tmp_path):
    for scheduler, expected in (("lcm", "LCM"), ("tcd", "TCD"), ("dpmpp_2m_sde_k", "DPM++ 2M SDE Karras")):
        record = {"positive_prompt": "cat", "scheduler": scheduler, "steps": 4}
        path = png_with_chunks(tmp_path / f"{scheduler}.png", {"invokeai_metadata": json.dumps(record)})
        assert read_metadata(path).sampler == expected
