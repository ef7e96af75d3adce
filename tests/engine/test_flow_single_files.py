"""FLUX.1 single files load offline: BFL's transformer with ae / clip_l / t5xxl beside it, and
ComfyUI's all-in-one file give exactly the pixels of the diffusers folder they were written from
(same weights, same configs, CPU fp32: the conversion only renames and splits tensors)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from ldm_studio.engine.checkpoints import inspect_model
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.generate import generate
from ldm_studio.engine.loader import load_model
from tests.engine.test_flow_models import pixels, request_for
from tests.flow_layouts import (
    bfl_transformer_state,
    tiny_flux_set,
    write_all_in_one,
)


@pytest.fixture(scope="module")
def flux(tmp_path_factory):
    root = tmp_path_factory.mktemp("flux-files")
    folder, pipe, bfl = tiny_flux_set(root)
    comfy = write_all_in_one(pipe, root / "comfy" / "flux1-dev-all-in-one.safetensors")
    first_stage = write_all_in_one(
        pipe, root / "comfy" / "flux-first-stage.safetensors", "first_stage_model."
    )
    return {"folder": folder, "pipe": pipe, "bfl": bfl, "comfy": comfy, "first_stage": first_stage}


def options(flux):
    return {"parts": {"tokenizers": flux["folder"]}}  # the tiny tokenizers stand in for the shipped ones


def test_bfl_layout_round_trips_to_the_tiny_transformer(flux):
    from ldm_studio.engine.checkpoints.flux_keys import convert_flux_transformer

    expected = flux["pipe"].transformer.state_dict()
    converted = convert_flux_transformer(bfl_transformer_state(flux["pipe"].transformer))
    assert set(converted) == set(expected)
    assert all(torch.equal(converted[k], expected[k]) for k in expected)


def test_our_conversion_equals_diffusers_for_a_3072_wide_file():
    """diffusers' converter only takes FLUX.1's width (3072): same tensors from both at that width
    (a thin file: every tensor 3072 rows where diffusers splits, a few columns)."""
    from diffusers.loaders.single_file_utils import convert_flux_transformer_checkpoint_to_diffusers

    from ldm_studio.engine.checkpoints.flux_keys import convert_flux_transformer

    torch.manual_seed(0)
    inner, cols = 3072, 2
    shapes = {
        "img_in": (inner, cols), "txt_in": (inner, cols), "time_in.in_layer": (inner, cols),
        "time_in.out_layer": (inner, cols), "vector_in.in_layer": (inner, cols),
        "vector_in.out_layer": (inner, cols), "guidance_in.in_layer": (inner, cols),
        "guidance_in.out_layer": (inner, cols), "final_layer.linear": (64, cols),
        "final_layer.adaLN_modulation.1": (2 * inner, cols),
    }  # fmt: skip
    for old in ("img_mod.lin", "txt_mod.lin", "img_mlp.0", "img_mlp.2", "txt_mlp.0", "txt_mlp.2",
                "img_attn.proj", "txt_attn.proj"):  # fmt: skip
        shapes[f"double_blocks.0.{old}"] = (inner, cols)
    shapes["double_blocks.0.img_attn.qkv"] = shapes["double_blocks.0.txt_attn.qkv"] = (3 * inner, cols)
    shapes["single_blocks.0.linear1"] = (7 * inner, cols)
    shapes["single_blocks.0.linear2"] = shapes["single_blocks.0.modulation.lin"] = (inner, cols)
    original = {}
    for name, shape in shapes.items():
        original[f"{name}.weight"] = torch.randn(shape)
        original[f"{name}.bias"] = torch.randn(shape[0])
    for norm in ("img_attn.norm", "txt_attn.norm"):
        for which in ("query_norm", "key_norm"):
            original[f"double_blocks.0.{norm}.{which}.scale"] = torch.randn(128)
    for which in ("query_norm", "key_norm"):
        original[f"single_blocks.0.norm.{which}.scale"] = torch.randn(128)
    theirs = convert_flux_transformer_checkpoint_to_diffusers(dict(original))
    ours = convert_flux_transformer(dict(original))
    assert set(ours) == set(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def bare_pixels(flux, request):
    from ldm_studio.engine.loader import load_model

    return pixels(generate(load_model(flux["folder"], device="cpu", dtype="float32"), request))


@pytest.mark.parametrize("layout", ["bfl", "comfy", "first_stage"])
def test_single_file_gives_the_folder_pixels(flux, layout):
    request = request_for(guidance=3.5, negative_prompt="", steps=3)
    model = load_model(flux[layout], device="cpu", dtype="float32", file_options=options(flux))
    assert model.family == "flux"
    assert np.array_equal(pixels(generate(model, request)), bare_pixels(flux, request))


def test_inspect_says_loadable_for_a_complete_set(flux):
    info = inspect_model(flux["bfl"])
    assert (info.family, info.loadable, info.reason) == ("flux", True, "")
    assert inspect_model(flux["comfy"]).loadable


def test_a_missing_text_encoder_gets_one_sentence(flux, tmp_path):
    lone = tmp_path / "flux1-dev.safetensors"
    shutil.copyfile(flux["bfl"], lone)
    shutil.copyfile(flux["bfl"].parent / "ae.safetensors", tmp_path / "ae.safetensors")
    info = inspect_model(lone)
    assert not info.loadable
    assert info.reason == (
        "flux1-dev.safetensors is a FLUX.1 dev file without the CLIP-L text encoder (clip_l.safetensors) "
        "and the T5-XXL text encoder (t5xxl_fp16.safetensors): put the file(s) beside it or in the "
        "library's text_encoders/ and vae/ folders under those names, or choose them in the model's "
        "settings (ldm-studio generate --part clip_l=PATH --part t5xxl=PATH)"
    )
    with pytest.raises(ModelLoadError) as raised:
        load_model(lone, device="cpu", dtype="float32")
    assert str(raised.value) == info.reason
    parts = {
        "clip_l": flux["bfl"].parent / "clip_l.safetensors",
        "t5xxl": flux["bfl"].parent / "t5xxl_fp16.safetensors",
    }
    model = load_model(
        lone, device="cpu", dtype="float32", file_options={"parts": {**parts, **options(flux)["parts"]}}
    )
    assert model.family == "flux"


def test_a_wrong_text_encoder_file_gets_one_sentence(flux, tmp_path):
    lone = tmp_path / "flux1-dev.safetensors"
    shutil.copyfile(flux["bfl"], lone)
    bfl = flux["bfl"].parent
    parts = {
        "ae": bfl / "ae.safetensors",
        "clip_l": bfl / "clip_l.safetensors",
        "t5xxl": bfl / "clip_l.safetensors",
    }
    with pytest.raises(ModelLoadError) as raised:
        load_model(
            lone, device="cpu", dtype="float32", file_options={"parts": {**parts, **options(flux)["parts"]}}
        )
    assert str(raised.value) == (
        "clip_l.safetensors is not the T5-XXL text encoder (t5xxl_fp16.safetensors): choose that file "
        "with --part t5xxl=PATH"
    )


def test_remembered_parts(flux, tmp_path):
    from ldm_studio.engine.checkpoints import get_model_settings, set_model_settings

    lone = tmp_path / "flux1-dev.safetensors"
    shutil.copyfile(flux["bfl"], lone)
    bfl = flux["bfl"].parent
    set_model_settings(lone, parts={"ae": bfl / "ae.safetensors", "clip_l": bfl / "clip_l.safetensors",
                                    "t5xxl": bfl / "t5xxl_fp16.safetensors"})  # fmt: skip
    assert get_model_settings(lone)["parts"]["vae"] == str((bfl / "ae.safetensors").resolve())
    assert inspect_model(lone).loadable
    with pytest.raises(ValueError, match="unknown part 'unet'"):
        set_model_settings(lone, parts={"unet": bfl / "ae.safetensors"})


def test_cli_part_options(flux, tmp_path, capsys):
    from ldm_studio.cli import main

    lone = tmp_path / "flux1-dev.safetensors"
    shutil.copyfile(flux["bfl"], lone)
    bfl = flux["bfl"].parent
    base = ["generate", "--model", str(lone), "--prompt", "a cat", "--seed", "3", "--steps", "2"]
    base += ["--width", "32", "--height", "32", "--cfg", "3.5", "--sampler", "Euler"]
    base += ["--out", str(tmp_path / "out")]
    assert main(base) != 0
    assert "--part clip_l=PATH --part t5xxl=PATH --part ae=PATH" in capsys.readouterr().err
    parts = [f"ae={bfl / 'ae.safetensors'}", f"clip_l={bfl / 'clip_l.safetensors'}"]
    parts += [f"t5xxl={bfl / 't5xxl_fp16.safetensors'}", f"tokenizers={flux['folder']}"]
    assert main([*base, *[arg for part in parts for arg in ("--part", part)]]) == 0
    assert capsys.readouterr().out.strip().endswith(".png")
    assert main([*base, "--part", "ae"]) == 2
    assert "--part takes NAME=PATH" in capsys.readouterr().err


def test_parts_in_the_library_folders_comfyui_keeps(flux, tmp_path):
    bfl = flux["bfl"].parent
    (tmp_path / "unet").mkdir()
    (tmp_path / "text_encoders").mkdir()
    (tmp_path / "vae").mkdir()
    model = tmp_path / "unet" / "flux1-dev.safetensors"
    shutil.copyfile(flux["bfl"], model)
    for name in ("clip_l.safetensors", "t5xxl_fp16.safetensors"):
        shutil.copyfile(bfl / name, tmp_path / "text_encoders" / name)
    shutil.copyfile(bfl / "ae.safetensors", tmp_path / "vae" / "ae.safetensors")
    assert inspect_model(model).loadable


def test_the_shipped_tokenizers_are_used_without_a_choice_and_checked(flux):
    """No tokenizers part: the shipped CLIP and T5 tokenizers load; the tiny encoders embed far fewer
    tokens than they have, which is said in words."""
    with pytest.raises(ModelLoadError) as raised:
        load_model(flux["bfl"], device="cpu", dtype="float32")
    assert str(raised.value) == (
        "clip_l.safetensors embeds 514 tokens but its tokenizer has 49,408: it is not the CLIP-L text "
        "encoder (clip_l.safetensors), or the tokenizer is another model's"
    )


def test_shipped_flux_configs_are_flux_sized():
    """The shipped configs build FLUX.1's published sizes (on the meta device: no memory)."""
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    from ldm_studio.engine.checkpoints import flow_configs

    def count(model) -> int:
        return sum(p.numel() for p in model.parameters())

    folder = flow_configs.flux_config_folder(dev=True)
    with torch.device("meta"):
        transformer = FluxTransformer2DModel.from_config(flow_configs.shipped(folder, "transformer"))
        t5 = T5EncoderModel(T5Config(**flow_configs.shipped(folder, "text_encoder_2")))
        vae = AutoencoderKL.from_config(flow_configs.shipped(folder, "vae"))
    assert round(count(transformer) / 1e9, 1) == 11.9
    assert round(count(t5) / 1e9, 2) == 4.76
    assert round(count(vae) / 1e6) == 84
    schnell = flow_configs.shipped(flow_configs.flux_config_folder(dev=False), "transformer")
    assert schnell["guidance_embeds"] is False
