"""SD 3 / SD 3.5 single files load offline: Stability's file with its parts inside, a transformer with
clip_l / clip_g / t5xxl / sd3_vae files beside it, and a file without T5 give the pixels of the
diffusers folder they were written from (same weights, same configs, CPU fp32)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ldm_studio.engine.checkpoints import inspect_model
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.generate import generate
from ldm_studio.engine.loader import load_model
from tests.engine.test_flow_models import pixels, request_for
from tests.flow_layouts import (
    build_conventional_sd3,
    stability_sd3_state,
    write_sd3_set,
    write_sd3_single_file,
)

VARIANTS = {"sd3": {}, "large": {"large": True}, "medium": {"large": True, "dual": (0,)}}
REQUEST = {"steps": 2, "negative_prompt": "blurry"}


@pytest.fixture(scope="module")
def sd3(tmp_path_factory):
    from diffusers import StableDiffusion3Pipeline

    root = tmp_path_factory.mktemp("sd3-files")
    made = {}
    for name, settings in VARIANTS.items():
        folder = build_conventional_sd3(root / f"tiny-{name}", **settings)
        pipe = StableDiffusion3Pipeline.from_pretrained(folder, local_files_only=True)
        made[name] = {"folder": folder, "pipe": pipe}
        made[name]["inside"] = write_sd3_single_file(pipe, root / name / "sd3_all_in_one.safetensors")
    pipe = made["sd3"]["pipe"]
    made["sd3"]["set"] = write_sd3_set(pipe, root / "set")
    made["sd3"]["no_t5"] = write_sd3_single_file(pipe, root / "no-t5" / "sd3_no_t5.safetensors", t5=False)
    made["sd3"]["vae_prefix"] = write_sd3_single_file(pipe, root / "vae" / "sd3_vae_inside.safetensors",
                                                      vae_prefix="vae.")  # fmt: skip
    return made


def options(folder, **parts):
    return {"parts": {"tokenizers": folder, **parts}}  # the tiny tokenizers stand in for the shipped ones


def folder_pixels(folder, request):
    return pixels(generate(load_model(folder, device="cpu", dtype="float32"), request))


def alone(transformer_file: Path, folder: Path) -> tuple[Path, Path]:
    """(the folder with the parts, a copy of the transformer file in ``folder`` without them)."""
    lone = folder / "sd3.5_large.safetensors"
    shutil.copyfile(transformer_file, lone)
    return transformer_file.parent, lone


def test_stability_layout_round_trips_through_diffusers_converter(sd3):
    from diffusers.loaders.single_file_utils import convert_sd3_transformer_checkpoint_to_diffusers

    for name in VARIANTS:
        transformer = sd3[name]["pipe"].transformer
        expected = transformer.state_dict()
        converted = convert_sd3_transformer_checkpoint_to_diffusers(stability_sd3_state(transformer))
        assert set(converted) == set(expected)
        assert all(torch.equal(converted[k], expected[k]) for k in expected)


@pytest.mark.parametrize(("name", "layout"), [("sd3", "inside"), ("sd3", "set"), ("sd3", "vae_prefix"),
                                              ("large", "inside"), ("medium", "inside")])  # fmt: skip
def test_single_file_gives_the_folder_pixels(sd3, name, layout):
    request = request_for(**REQUEST)
    made = sd3[name]
    model = load_model(made[layout], device="cpu", dtype="float32", file_options=options(made["folder"]))
    assert model.family == "sd3"
    assert model.pipe.text_encoder_3 is not None
    assert np.array_equal(pixels(generate(model, request)), folder_pixels(made["folder"], request))


def test_the_transformer_config_is_refitted_to_the_file(sd3):
    made = sd3["medium"]
    model = load_model(made["inside"], device="cpu", dtype="float32", file_options=options(made["folder"]))
    ours, theirs = model.pipe.transformer.config, made["pipe"].transformer.config
    for key in ("num_layers", "num_attention_heads", "caption_projection_dim", "pos_embed_max_size",
                "joint_attention_dim", "pooled_projection_dim", "patch_size", "in_channels", "out_channels",
                "qk_norm"):  # fmt: skip
        assert ours[key] == theirs[key], key
    assert tuple(ours["dual_attention_layers"]) == (0,)


@pytest.mark.parametrize(("name", "variant"), [("sd3", "SD 3"), ("large", "SD 3.5 Large"),
                                               ("medium", "SD 3.5 Medium")])  # fmt: skip
def test_inspect_says_loadable_with_the_variant(sd3, name, variant):
    from ldm_studio.engine.checkpoints.tensors import read_safetensors_header
    from ldm_studio.engine.flow_files import describe_flow_file

    info = inspect_model(sd3[name]["inside"])
    assert (info.family, info.loadable, info.reason, info.notes) == ("sd3", True, "", ())
    assert describe_flow_file(read_safetensors_header(sd3[name]["inside"]).shapes).variant == variant
    assert inspect_model(sd3["sd3"]["set"]).loadable


def test_without_t5_it_loads_and_matches_a_folder_without_t5(sd3, tmp_path):
    made = sd3["sd3"]
    info = inspect_model(made["no_t5"])
    assert info.loadable
    assert info.notes == (
        "without T5 (prompts follow less closely): put t5xxl_fp16.safetensors beside it or choose it "
        "with --part t5xxl=PATH",
    )
    model = load_model(made["no_t5"], device="cpu", dtype="float32", file_options=options(made["folder"]))
    assert model.pipe.text_encoder_3 is None and model.pipe.tokenizer_3 is None
    folder = tmp_path / "sd3-no-t5"
    shutil.copytree(made["folder"], folder)
    for part in ("text_encoder_3", "tokenizer_3"):
        shutil.rmtree(folder / part)
    index = json.loads((folder / "model_index.json").read_text())
    index.update(text_encoder_3=[None, None], tokenizer_3=[None, None])
    (folder / "model_index.json").write_text(json.dumps(index))
    request = request_for(**REQUEST)
    without = pixels(generate(model, request))
    assert np.array_equal(without, folder_pixels(folder, request))
    assert not np.array_equal(without, folder_pixels(made["folder"], request))  # T5 does change the image


def test_a_missing_clip_g_gets_one_sentence(sd3, tmp_path):
    beside, lone = alone(sd3["sd3"]["set"], tmp_path)
    for name in ("clip_l.safetensors", "sd3_vae.safetensors"):
        shutil.copyfile(beside / name, tmp_path / name)
    info = inspect_model(lone)
    assert not info.loadable
    assert info.reason == (
        "sd3.5_large.safetensors is an SD 3 file without the CLIP-G text encoder (clip_g.safetensors): "
        "put the file(s) beside it or in the library's text_encoders/ and vae/ folders under those names, "
        "or choose them in the model's settings (ldm-studio generate --part clip_g=PATH)"
    )
    with pytest.raises(ModelLoadError) as raised:
        load_model(lone, device="cpu", dtype="float32", file_options=options(sd3["sd3"]["folder"]))
    assert str(raised.value) == info.reason
    chosen = options(sd3["sd3"]["folder"], clip_g=beside / "clip_g.safetensors")
    assert load_model(lone, device="cpu", dtype="float32", file_options=chosen).family == "sd3"


def test_a_missing_vae_names_the_sd3_vae(sd3, tmp_path):
    beside, lone = alone(sd3["sd3"]["set"], tmp_path)
    for name in ("clip_l.safetensors", "clip_g.safetensors"):
        shutil.copyfile(beside / name, tmp_path / name)
    shutil.copyfile(beside / "sd3_vae.safetensors", tmp_path / "ae.safetensors")  # FLUX's name: not taken
    assert inspect_model(lone).reason.endswith(
        "without the 16-channel SD 3 VAE (sd3_vae.safetensors): put the file(s) beside it or in the "
        "library's text_encoders/ and vae/ folders under those names, or choose them in the model's "
        "settings (ldm-studio generate --part vae=PATH)"
    )


def test_a_wrong_file_for_a_part_gets_one_sentence(sd3, tmp_path):
    beside, lone = alone(sd3["sd3"]["set"], tmp_path)
    parts = {
        "clip_l": beside / "clip_l.safetensors",
        "clip_g": beside / "clip_l.safetensors",  # CLIP-L has no projection: not CLIP-G
        "vae": beside / "sd3_vae.safetensors",
    }
    with pytest.raises(ModelLoadError) as raised:
        load_model(lone, device="cpu", dtype="float32", file_options=options(sd3["sd3"]["folder"], **parts))
    assert str(raised.value) == (
        "clip_l.safetensors is not the CLIP-G text encoder (clip_g.safetensors): choose that file with "
        "--part clip_g=PATH"
    )
    parts.update(clip_g=beside / "clip_g.safetensors", t5xxl=beside / "clip_g.safetensors")
    with pytest.raises(ModelLoadError) as raised:
        load_model(lone, device="cpu", dtype="float32", file_options=options(sd3["sd3"]["folder"], **parts))
    assert str(raised.value) == (
        "clip_g.safetensors is not the T5-XXL text encoder (t5xxl_fp16.safetensors): choose that file with "
        "--part t5xxl=PATH"
    )


def test_parts_in_the_library_folders(sd3, tmp_path):
    beside = sd3["sd3"]["set"].parent
    for sub in ("diffusion_models", "text_encoders", "vae"):
        (tmp_path / sub).mkdir()
    model = tmp_path / "diffusion_models" / "sd3.5_large.safetensors"
    shutil.copyfile(sd3["sd3"]["set"], model)
    for name in ("clip_l.safetensors", "clip_g.safetensors", "t5xxl_fp16.safetensors"):
        shutil.copyfile(beside / name, tmp_path / "text_encoders" / name)
    shutil.copyfile(beside / "sd3_vae.safetensors", tmp_path / "vae" / "sd3_vae.safetensors")
    info = inspect_model(model)
    assert (info.loadable, info.notes) == (True, ())


def test_flow_file_reason_no_longer_refuses_sd3_safetensors():
    from ldm_studio.engine.flow_files import describe_flow_file

    reason = describe_flow_file(["joint_blocks.0.x_block.attn.qkv.weight"]).reason
    assert "not yet SD 3" not in reason
    assert "SD 3 GGUF" in reason


def test_cli_accepts_clip_g(sd3, tmp_path, capsys):
    from ldm_studio.cli import main

    beside, lone = alone(sd3["sd3"]["set"], tmp_path)
    base = ["generate", "--model", str(lone), "--prompt", "a cat", "--seed", "3", "--steps", "1"]
    base += ["--width", "32", "--height", "32", "--cfg", "4.5", "--sampler", "Euler"]
    base += ["--out", str(tmp_path / "out")]
    assert main(base) != 0
    assert "--part clip_l=PATH --part clip_g=PATH --part vae=PATH" in capsys.readouterr().err
    parts = [f"{name}={beside / f'{name}.safetensors'}" for name in ("clip_l", "clip_g")]
    parts += [f"vae={beside / 'sd3_vae.safetensors'}", f"tokenizers={sd3['sd3']['folder']}"]
    assert main([*base, *[arg for part in parts for arg in ("--part", part)]]) == 0
    assert capsys.readouterr().out.strip().endswith(".png")


def test_a_vae_in_diffusers_layout_beside_the_file(sd3, tmp_path):
    """SD 3.5's releases ship the VAE as vae/diffusion_pytorch_model.safetensors: taken as it is."""
    from safetensors.torch import save_file

    made = sd3["sd3"]
    beside, lone = alone(made["set"], tmp_path)
    for name in ("clip_l.safetensors", "clip_g.safetensors", "t5xxl_fp16.safetensors"):
        shutil.copyfile(beside / name, tmp_path / name)
    vae = {k: v.contiguous() for k, v in made["pipe"].vae.state_dict().items()}
    save_file(vae, str(tmp_path / "sd3_vae.safetensors"))
    request = request_for(**REQUEST)
    model = load_model(lone, device="cpu", dtype="float32", file_options=options(made["folder"]))
    assert np.array_equal(pixels(generate(model, request)), folder_pixels(made["folder"], request))


def test_shipped_sd3_configs_are_the_published_sizes():
    """On the meta device: SD 3 Medium's MMDiT 2.0 B, SD 3.5 Large's 8.1 B, SD 3.5 Medium's 2.5 B with
    its 384² position table; CLIP-G's text tower 695 M, CLIP-L's 124 M, the VAE 84 M."""
    import diffusers
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from ldm_studio.engine.checkpoints import flow_configs
    from ldm_studio.engine.checkpoints.sd3_single_file import sd3_config_folder

    def count(model, buffers: bool = False) -> int:
        return sum(p.numel() for p in [*model.parameters(), *(model.buffers() if buffers else [])])

    expected = {"SD 3": 2.0, "SD 3.5 Large": 8.1, "SD 3.5 Medium": 2.5}
    for variant, billions in expected.items():
        folder = sd3_config_folder(variant)
        with torch.device("meta"):
            transformer = diffusers.SD3Transformer2DModel.from_config(
                flow_configs.shipped(folder, "transformer")
            )
        assert round(count(transformer, buffers=variant == "SD 3.5 Medium") / 1e9, 1) == billions, variant
    with torch.device("meta"):
        clip_g = CLIPTextModelWithProjection(CLIPTextConfig(**flow_configs.shipped(folder, "text_encoder_2")))
        clip_l = CLIPTextModelWithProjection(CLIPTextConfig(**flow_configs.shipped(folder, "text_encoder")))
        vae = diffusers.AutoencoderKL.from_config(flow_configs.shipped(folder, "vae"))
    assert (round(count(clip_g) / 1e6), round(count(clip_l) / 1e6), round(count(vae) / 1e6)) == (695, 124, 84)
    assert clip_g.config.hidden_act == "gelu" and clip_l.config.hidden_act == "quick_gelu"
    assert flow_configs.shipped(folder, "scheduler")["shift"] == 3.0
    assert vae.config.scaling_factor == 1.5305 and vae.config.shift_factor == 0.0609


def test_shipped_tokenizers_pad_as_sd3s_and_are_checked(sd3):
    """No tokenizers part: the shipped CLIP vocabulary loads, CLIP-L padding with its end token and
    CLIP-G with "!" (id 0); the tiny encoders embed far fewer tokens, which is said in words."""
    from ldm_studio.engine.checkpoints.flow_parts import clip_tokenizer
    from ldm_studio.engine.checkpoints.sd3_single_file import sd3_config_folder

    folder = sd3_config_folder("SD 3.5 Large")
    clip_l, clip_g = clip_tokenizer({}, folder, "tokenizer"), clip_tokenizer({}, folder, "tokenizer_2")
    assert (len(clip_l), clip_l.pad_token_id, clip_g.pad_token_id) == (49408, clip_l.eos_token_id, 0)
    with pytest.raises(ModelLoadError) as raised:
        load_model(sd3["sd3"]["set"], device="cpu", dtype="float32")
    assert str(raised.value).startswith("clip_l.safetensors embeds ")
    assert str(raised.value).endswith(
        "tokens but its tokenizer has 49,408: it is not the CLIP-L text encoder (clip_l.safetensors), or "
        "the tokenizer is another model's"
    )


def test_remembered_clip_g(sd3, tmp_path):
    from ldm_studio.engine.checkpoints import set_model_settings

    beside, lone = alone(sd3["sd3"]["set"], tmp_path)
    assert not inspect_model(lone).loadable
    set_model_settings(lone, parts={"clip_l": beside / "clip_l.safetensors",
                                    "clip_g": beside / "clip_g.safetensors",
                                    "vae": beside / "sd3_vae.safetensors"})  # fmt: skip
    info = inspect_model(lone)
    assert info.loadable and info.notes[0].startswith("without T5")
