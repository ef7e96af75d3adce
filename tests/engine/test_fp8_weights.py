"""fp8 FLUX.1 files (transformer and T5 stored as float8_e4m3fn, as flux1-dev-fp8 and
t5xxl_fp8_e4m3fn are) stay fp8 in memory and give the pixels of the same weights cast up at load;
ComfyUI's scaled fp8 files are dequantised with their scales."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from ldm_studio.engine.checkpoints import inspect_model
from ldm_studio.engine.checkpoints.fp8_weights import FP8_DTYPES, unscale
from ldm_studio.engine.generate import generate
from ldm_studio.engine.loader import load_model
from tests.engine.test_flow_models import pixels, request_for
from tests.flow_layouts import (
    build_conventional_sd3,
    tiny_flux_set,
    write_sd3_set,
)

FP8 = torch.float8_e4m3fn


def as_fp8(path, target):
    save_file(
        {k: v.to(FP8) if v.is_floating_point() else v for k, v in load_file(str(path)).items()}, str(target)
    )


def cast_up(path, target):
    save_file({k: v.to(torch.float32) for k, v in load_file(str(path)).items()}, str(target))


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("flux-fp8")
    folder, _pipe, original = tiny_flux_set(root, "original")
    fp8, up = root / "fp8", root / "cast-up"
    for target in (fp8, up):
        target.mkdir()
        for name in ("clip_l.safetensors", "ae.safetensors"):
            shutil.copy(original.parent / name, target / name)
    as_fp8(original, fp8 / "flux1-dev-fp8.safetensors")
    as_fp8(original.parent / "t5xxl_fp16.safetensors", fp8 / "t5xxl_fp8_e4m3fn.safetensors")
    cast_up(fp8 / "flux1-dev-fp8.safetensors", up / "flux1-dev.safetensors")
    cast_up(fp8 / "t5xxl_fp8_e4m3fn.safetensors", up / "t5xxl_fp16.safetensors")
    return {"folder": folder, "fp8": fp8 / "flux1-dev-fp8.safetensors", "up": up / "flux1-dev.safetensors"}


def load(sets, path):
    return load_model(
        path, device="cpu", dtype="float32", file_options={"parts": {"tokenizers": sets["folder"]}}
    )


def image(model):
    return pixels(generate(model, request_for(guidance=3.5, negative_prompt="", steps=2))).astype(np.int16)


def test_fp8_weights_stay_fp8_and_give_the_cast_up_pixels(sets):
    model = load(sets, sets["fp8"])
    transformer, t5 = model.pipe.transformer, model.pipe.text_encoder_2
    assert transformer.transformer_blocks[0].attn.to_q.weight.dtype == FP8
    assert t5.encoder.block[0].layer[0].SelfAttention.q.weight.dtype == FP8
    assert transformer.norm_out.linear.weight.dtype == torch.float32  # in a norm: cast up at load
    assert all(p.dtype not in FP8_DTYPES for n, p in t5.named_parameters() if "layer_norm" in n)
    kept = image(model)
    reference = image(load(sets, sets["up"]))
    assert np.abs(kept - reference).max() <= 1 and kept.std() > 1


def test_info_counts_the_fp8_parts_at_one_byte(sets):
    fp8, up = inspect_model(sets["fp8"]), inspect_model(sets["up"])
    assert set(fp8.stored_bytes) == {"transformer", "t5xxl"}
    assert fp8.stored_bytes["transformer"] == fp8.parameters["transformer"]
    assert any("transformer kept in fp8" in note for note in fp8.notes)
    assert fp8.memory_estimate(4) < up.memory_estimate(4) and not up.stored_bytes


def test_scaled_fp8_is_dequantised_with_its_scales(sets, tmp_path):
    weights = load_file(str(sets["up"].parent / "t5xxl_fp16.safetensors"))
    scaled = {"scaled_fp8": torch.zeros(2, dtype=FP8)}
    for name, tensor in weights.items():
        if name.endswith(".weight") and tensor.dim() == 2 and "shared" not in name:
            scaled[name] = (tensor / 2).to(FP8)
            scaled[name.removesuffix("weight") + "scale_weight"] = torch.tensor([2.0])
        else:
            scaled[name] = tensor
    restored = unscale(scaled, torch.float32)
    assert "scaled_fp8" not in restored and not any(k.endswith("scale_weight") for k in restored)
    name = "encoder.block.0.layer.0.SelfAttention.q.weight"
    assert torch.allclose(restored[name], (weights[name] / 2).to(FP8).float() * 2)
    folder = tmp_path / "scaled"
    shutil.copytree(sets["up"].parent, folder)
    (folder / "t5xxl_fp16.safetensors").unlink()
    save_file(scaled, str(folder / "t5xxl_fp8_e4m3fn_scaled.safetensors"))
    model = load(sets, folder / "flux1-dev.safetensors")
    assert model.pipe.text_encoder_2.encoder.block[0].layer[0].SelfAttention.q.weight.dtype == torch.float32
    assert "t5xxl" not in inspect_model(folder / "flux1-dev.safetensors").stored_bytes


def test_an_sd3_fp8_transformer_with_its_fp8_positional_embedding(tmp_path):
    from diffusers import StableDiffusion3Pipeline

    folder = build_conventional_sd3(tmp_path / "tiny-sd3")
    pipe = StableDiffusion3Pipeline.from_pretrained(folder, local_files_only=True)
    original = write_sd3_set(pipe, tmp_path / "original", t5=False)
    fp8, up = tmp_path / "fp8", tmp_path / "up"
    for target in (fp8, up):
        shutil.copytree(original.parent, target)
    as_fp8(original, fp8 / original.name)  # pos_embed (a buffer in diffusers) in fp8 too
    cast_up(fp8 / original.name, up / original.name)
    options = {"parts": {"tokenizers": folder}}
    kept = load_model(fp8 / original.name, device="cpu", dtype="float32", file_options=options)
    assert kept.pipe.transformer.transformer_blocks[0].attn.to_q.weight.dtype == FP8
    assert kept.pipe.transformer.pos_embed.pos_embed.dtype == torch.float32
    reference = load_model(up / original.name, device="cpu", dtype="float32", file_options=options)
    request = request_for(steps=2, guidance=4.0)
    a = pixels(generate(kept, request)).astype(np.int16)
    b = pixels(generate(reference, request)).astype(np.int16)
    assert np.abs(a - b).max() <= 1 and a.std() > 1
