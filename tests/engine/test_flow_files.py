"""SD 3 / FLUX single files recognised from the safetensors header: family, variant, parts, a sentence."""

from __future__ import annotations

import torch
from safetensors.torch import save_file

from ldm_studio.engine.checkpoints import inspect_model
from ldm_studio.engine.flow_files import describe_flow_file


def write(path, names):
    save_file({name: torch.zeros(2) for name in names}, str(path))
    return path


BFL_DEV = [
    "img_in.weight",
    "double_blocks.0.img_attn.qkv.weight",
    "single_blocks.0.linear1.weight",
    "guidance_in.in_layer.weight",
    "time_in.in_layer.weight",
]


def test_bfl_flux_dev_transformer_alone(tmp_path):
    info = inspect_model(write(tmp_path / "flux1-dev.safetensors", BFL_DEV))
    assert (info.family, info.loadable) == ("flux", False)
    assert info.reason.startswith(
        "flux1-dev.safetensors is a FLUX.1 dev file without the CLIP-L text encoder (clip_l.safetensors) "
        "and the T5-XXL text encoder (t5xxl_fp16.safetensors) and the 16-channel FLUX VAE (ae.safetensors)"
    )
    assert describe_flow_file(BFL_DEV).reason.startswith(
        "this is a FLUX.1 dev file in the BFL layout (inside: transformer; it lacks clip_l, t5xxl, vae)."
    )


def test_bfl_schnell_has_no_guidance_input(tmp_path):
    names = [name for name in BFL_DEV if not name.startswith("guidance_in")]
    assert describe_flow_file(names).variant == "FLUX.1 schnell"


def test_comfyui_all_in_one_flux_names_what_is_inside(tmp_path):
    names = [f"model.diffusion_model.{name}" for name in BFL_DEV] + [
        "text_encoders.clip_l.transformer.text_model.embeddings.token_embedding.weight",
        "text_encoders.t5xxl.transformer.shared.weight",
        "vae.decoder.conv_in.weight",
    ]
    flow = describe_flow_file(names)
    assert (flow.layout, flow.parts, flow.missing) == (
        "ComfyUI all-in-one",
        ("transformer", "clip_l", "t5xxl", "vae"),
        (),
    )


def test_sd3_variants_from_the_header():
    base = [
        "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight",
        "first_stage_model.decoder.conv_in.weight",
        "text_encoders.clip_l.transformer.x",
        "text_encoders.clip_g.transformer.x",
    ]
    sd3 = describe_flow_file(base)
    assert (sd3.family, sd3.variant, sd3.missing) == ("sd3", "SD 3", ("t5xxl",))
    large = describe_flow_file([*base, "model.diffusion_model.joint_blocks.0.x_block.attn.ln_q.weight"])
    assert large.variant == "SD 3.5 Large"
    medium = describe_flow_file([*base, "model.diffusion_model.joint_blocks.0.x_block.attn2.qkv.weight"])
    assert medium.variant == "SD 3.5 Medium"


def test_an_sd_unet_file_is_not_taken_for_a_flow_model():
    assert describe_flow_file(["model.diffusion_model.input_blocks.0.0.weight"]) is None
