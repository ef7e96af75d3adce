"""Recognising few-step models and LoRAs from real-format safetensors headers and names, and their presets."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest

from ldm_studio.engine.distilled import preset_for, recognise, recognise_path, steps_in
from ldm_studio.engine.request import GenerationRequest


def write_safetensors(path, metadata: dict[str, str], tensors: tuple[str, ...] = ("a.weight",)):
    """A valid safetensors file as the format defines it: 8-byte header length, JSON header, data."""
    header: dict = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name in tensors:
        header[name] = {"dtype": "F32", "shape": [2], "data_offsets": [offset, offset + 8]}
        offset += 8
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return path


# Header metadata as the tools write it: Stability's model spec (SDXL Turbo), kohya's training keys.
SAI_TURBO = {
    "modelspec.sai_model_spec": "1.0.0",
    "modelspec.architecture": "stable-diffusion-xl-v1-base",
    "modelspec.implementation": "sgm",
    "modelspec.title": "SDXL Turbo",
}
KOHYA_LCM = {
    "ss_network_module": "networks.lora",
    "ss_network_dim": "64",
    "ss_network_alpha": "64",
    "ss_output_name": "lcm-lora-sdxl",
    "ss_sd_model_name": "sd_xl_base_1.0.safetensors",
}
KOHYA_STYLE_ON_LCM_BASE = {
    **KOHYA_LCM,
    "ss_output_name": "watercolor_style",
    "ss_sd_model_name": "LCM_Dreamshaper_v7",
}


def test_a_renamed_turbo_file_is_known_by_its_model_spec_title(tmp_path):
    preset = recognise_path(write_safetensors(tmp_path / "model.safetensors", SAI_TURBO))
    assert preset is not None and preset.source == "metadata"
    assert (preset.kind, preset.sampler, preset.steps, preset.guidance, preset.size) == (
        "turbo",
        "Euler a",
        1,
        1.0,
        512,
    )


def test_kohya_output_name_names_an_lcm_lora_and_the_base_model_does_not(tmp_path):
    preset = recognise_path(write_safetensors(tmp_path / "pytorch_lora_weights.safetensors", KOHYA_LCM))
    assert (preset.kind, preset.sampler, preset.steps, preset.guidance) == ("lcm", "LCM", 4, 1.5)
    assert preset.offer() == "LCM LoRA: use LCM, 4 steps, CFG 1.5?"
    style = write_safetensors(tmp_path / "watercolor.safetensors", KOHYA_STYLE_ON_LCM_BASE)
    assert recognise_path(style) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sdxl_lightning_4step_lora", ("lightning", "Euler", "SGM Uniform", 4, 1.0)),
        ("sdxl_lightning_8step_unet", ("lightning", "Euler", "SGM Uniform", 8, 1.0)),
        ("juggernautXL_lightning", ("lightning", "Euler", "SGM Uniform", 4, 1.0)),
        ("Hyper-SD15-8steps-lora", ("hyper", "DDIM", "SGM Uniform", 8, 1.0)),
        ("Hyper-SDXL-12steps-CFG-lora", ("hyper", "DDIM", "SGM Uniform", 12, 5.0)),
        ("Hyper-SDXL-1step-lora", ("hyper", "TCD", "Automatic", 1, 1.0)),
        ("TCD-SDXL-LoRA", ("tcd", "TCD", "Automatic", 4, 1.0)),
        ("lcm-lora-sdv1-5", ("lcm", "LCM", "Automatic", 4, 1.5)),
        ("sd_xl_turbo_1.0_fp16", ("turbo", "Euler a", "Automatic", 1, 1.0)),
        ("dreamshaperXL_v21TurboDPMSDE", ("turbo", "Euler a", "Automatic", 1, 1.0)),
    ],
)
def test_file_names_hint_at_the_kind_and_steps(name, expected):
    preset = recognise(name)
    assert preset is not None and preset.source == "name"
    assert (preset.kind, preset.sampler, preset.schedule, preset.steps, preset.guidance) == expected


@pytest.mark.parametrize(
    "name", ["v1-5-pruned-emaonly", "hyperRealism_v3", "realisticVision_v51", "tcdx", "blcmx"]
)
def test_ordinary_names_are_not_few_step_models(name):
    assert recognise(name) is None


def test_steps_in_names():
    assert [steps_in(n) for n in ("x_4step", "x-8-steps", "x 2 step", "v1-5", "x_16steps")] == [
        4,
        8,
        2,
        None,
        16,
    ]


def test_an_lcm_distilled_unet_is_known_by_its_guidance_projection(tmp_path):
    unet_keys = ("model.diffusion_model.time_embed.cond_proj.weight", "model.diffusion_model.out.2.weight")
    preset = recognise_path(write_safetensors(tmp_path / "dreamshaper7.safetensors", {}, unet_keys))
    assert (preset.kind, preset.sampler, preset.guidance) == ("lcm", "LCM", 8.0)
    folder = tmp_path / "dreamshaper-folder"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "config.json").write_text(json.dumps({"time_cond_proj_dim": 256}))
    assert recognise_path(folder).guidance == 8.0
    (folder / "unet" / "config.json").write_text(json.dumps({"time_cond_proj_dim": None}))
    assert recognise_path(folder) is None


def test_the_users_choice_wins(tmp_path):
    path = write_safetensors(tmp_path / "sdxl_lightning_4step.safetensors", {})
    assert recognise_path(path, {"few_step": "none"}) is None
    chosen = recognise_path(path, {"few_step": "tcd"})
    assert (chosen.kind, chosen.source, chosen.steps, chosen.tcd_gamma) == ("tcd", "settings", 4, 0.3)
    plain = write_safetensors(tmp_path / "my_merge.safetensors", {})
    assert recognise_path(plain) is None
    assert recognise_path(plain, {"few_step": "lcm"}).sampler == "LCM"


def test_a_damaged_header_only_loses_the_metadata(tmp_path):
    broken = tmp_path / "lcm_broken.safetensors"
    broken.write_bytes(b"\xff" * 20)
    assert recognise_path(broken).kind == "lcm"  # the name still says it


def test_applying_a_preset_sets_the_request_and_keeps_the_rest():
    request = GenerationRequest(
        "a fox", negative_prompt="blur", seed=5, steps=30, guidance=7.0, width=768, height=768
    )
    turbo = preset_for("turbo").applied(request)
    assert (turbo.sampler, turbo.steps, turbo.guidance, turbo.width, turbo.height) == (
        "Euler a",
        1,
        1.0,
        512,
        512,
    )
    assert (turbo.prompt, turbo.negative_prompt, turbo.seed) == ("a fox", "blur", 5)
    tcd = preset_for("tcd").applied(request)
    assert tcd.extras == {"tcd_gamma": 0.3} and tcd.width == 768
    assert preset_for("tcd").matches(tcd) and not preset_for("lcm").matches(tcd)
    assert preset_for("lcm").applied(tcd).extras == {}  # gamma only belongs to TCD
    assert preset_for("lightning", 8).summary() == "Euler SGM Uniform, 8 steps, CFG off"
    with pytest.raises(ValueError, match="unknown few-step kind 'flash'"):
        preset_for("flash")


def test_the_module_imports_no_torch():
    code = "import sys, ldm_studio.engine.distilled; print('torch' in sys.modules, 'PySide6' in sys.modules)"
    assert subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split() == [
        "False",
        "False",
    ]
