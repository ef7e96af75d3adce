"""LoRAs on a tiny FLUX.1: the key layouts real tools write, merged by our stack and removed bit for bit.

Files are written here the way their tools write them (kohya's fused BFL layers with ``.alpha``, BFL /
ComfyUI's dotted names, diffusers' PEFT names), and the expected weights are computed from the fused
formula ``W + alpha/rank · up @ down`` split by hand — not through the engine's mapping.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ldm_studio.engine.events import Finished
from ldm_studio.engine.generate import generate
from ldm_studio.engine.loader import load_model
from ldm_studio.engine.lora import LoraError, LoraStack, ModelParts, lora_from_tensors
from ldm_studio.engine.lora.flux_names import flux_to_diffusers
from ldm_studio.engine.networks import NetworkLibrary
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.networks import LORA_HASHES_KEY, a1111_network_settings, refs_from_record
from tests.engine.lora_factory import kohya_lora
from tests.flow_models import IMAGE_SIZE, build_tiny_flux

RANK, ALPHA = 4, 2.0


@pytest.fixture(scope="module")
def flux(tmp_path_factory):
    folder = build_tiny_flux(tmp_path_factory.mktemp("flux-lora") / "tiny-flux")
    return load_model(folder, device="cpu", dtype="float32")


def factors(out: int, inp: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    down = torch.randn(RANK, inp, generator=generator) * 0.3
    up = torch.randn(out, RANK, generator=generator) * 0.3
    return down, up


def width(flux) -> int:
    return flux.pipe.transformer.transformer_blocks[0].attn.to_q.weight.shape[0]


def kohya_file(flux) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """sd-scripts' FLUX LoRA: fused qkv, ``.alpha``; and the expected ΔW per diffusers layer."""
    d = width(flux)
    te_q = flux.pipe.text_encoder.get_submodule(_te_path(flux.pipe.text_encoder)).weight
    layers = {
        "lora_unet_double_blocks_0_img_attn_qkv": (3 * d, d, ["attn.to_q", "attn.to_k", "attn.to_v"]),
        "lora_unet_double_blocks_0_txt_attn_qkv": (
            3 * d,
            d,
            ["attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"],
        ),
        "lora_unet_double_blocks_0_img_attn_proj": (d, d, ["attn.to_out.0"]),
        "lora_unet_single_blocks_0_linear2": (d, 5 * d, ["proj_out"]),
    }
    tensors, expected = {}, {}
    for seed, (name, (out, inp, targets)) in enumerate(layers.items()):
        down, up = factors(out, inp, seed)
        tensors |= {
            f"{name}.lora_down.weight": down,
            f"{name}.lora_up.weight": up,
            f"{name}.alpha": torch.tensor(ALPHA),
        }
        fused = ALPHA / RANK * up @ down
        block = "transformer_blocks.0" if "double" in name else "single_transformer_blocks.0"
        for target, piece in zip(targets, fused.split(out // len(targets)), strict=True):
            expected[f"transformer.{block}.{target}"] = piece
    down, up = factors(te_q.shape[0], te_q.shape[1], 9)
    te_name = "lora_te1_" + _te_path(flux.pipe.text_encoder, kohya=True).replace(".", "_")
    tensors |= {
        f"{te_name}.lora_down.weight": down,
        f"{te_name}.lora_up.weight": up,
        f"{te_name}.alpha": torch.tensor(ALPHA),
    }
    expected[f"te1.{_te_path(flux.pipe.text_encoder)}"] = ALPHA / RANK * up @ down
    return tensors, expected


def _te_path(encoder, kohya: bool = False) -> str:
    inner = "encoder.layers.0.self_attn.q_proj"
    return f"text_model.{inner}" if hasattr(encoder, "text_model") or kohya else inner


def bfl_file(flux, prefix: str = "diffusion_model.") -> tuple[dict, dict]:
    """BFL / ComfyUI names, PEFT factors, no alpha (scale 1)."""
    d = width(flux)
    down, up = factors(3 * d, d, 11)
    tensors = {
        f"{prefix}double_blocks.0.img_attn.qkv.lora_A.weight": down,
        f"{prefix}double_blocks.0.img_attn.qkv.lora_B.weight": up,
    }
    fused = up @ down
    names = ["attn.to_q", "attn.to_k", "attn.to_v"]
    return tensors, {
        f"transformer.transformer_blocks.0.{n}": p for n, p in zip(names, fused.split(d), strict=True)
    }


def diffusers_file(flux) -> tuple[dict, dict]:
    d = width(flux)
    down, up = factors(d, d, 13)
    path = "single_transformer_blocks.0.attn.to_q"
    tensors = {f"transformer.{path}.lora_A.weight": down, f"transformer.{path}.lora_B.weight": up}
    return tensors, {f"transformer.{path}": up @ down}


def module_for(flux, key: str) -> torch.nn.Module:
    part, path = key.split(".", 1)
    return (flux.pipe.transformer if part == "transformer" else flux.pipe.text_encoder).get_submodule(path)


def snapshot(flux) -> dict[str, torch.Tensor]:
    return {
        f"{n}.{k}": v.clone()
        for n, m in (("t", flux.pipe.transformer), ("c", flux.pipe.text_encoder))
        for k, v in m.state_dict().items()
    }


@pytest.mark.parametrize("layout", [kohya_file, bfl_file, lambda f: bfl_file(f, ""), diffusers_file])
def test_each_layout_patches_w_plus_scaled_product_and_restores_bit_for_bit(flux, layout):
    tensors, expected = layout(flux)
    before = snapshot(flux)
    stack = LoraStack(ModelParts.from_pipe(flux.pipe), model_family="flux")
    network = lora_from_tensors(tensors, "style")
    report = stack.apply([(network, 0.7)])
    assert report.notices == ()
    for key, delta in expected.items():
        original = before[
            ("t." if key.startswith("transformer.") else "c.") + key.split(".", 1)[1] + ".weight"
        ]
        torch.testing.assert_close(module_for(flux, key).weight, original + 0.7 * delta, rtol=1e-5, atol=1e-6)
    assert report.layers_written == len(expected)
    stack.clear()
    after = snapshot(flux)
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_full_size_linear1_splits_into_qkv_and_mlp_with_alpha_folded():
    # diffusers' converter knows FLUX.1's real widths (3072, MLP 12288): checked on the factors alone
    generator = torch.Generator().manual_seed(3)
    down, up = torch.randn(RANK, 3072, generator=generator), torch.randn(21504, RANK, generator=generator)
    name = "lora_unet_single_blocks_0_linear1"
    out = flux_to_diffusers(
        {
            f"{name}.lora_down.weight": down,
            f"{name}.lora_up.weight": up,
            f"{name}.alpha": torch.tensor(ALPHA),
        },
        "x",
    )
    fused = ALPHA / RANK * up @ down
    block = "transformer.single_transformer_blocks.0"
    for target, rows in zip(
        ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"), fused.split([3072] * 3 + [12288]), strict=True
    ):
        got = out[f"{block}.{target}.lora_B.weight"] @ out[f"{block}.{target}.lora_A.weight"]
        torch.testing.assert_close(got, rows, rtol=1e-5, atol=1e-5)


def request(prompt: str) -> GenerationRequest:
    return GenerationRequest(
        prompt, "", seed=3, steps=2, guidance=3.5, sampler="Euler", width=IMAGE_SIZE, height=IMAGE_SIZE
    )


def image(result) -> np.ndarray:
    assert isinstance(result, Finished), getattr(result, "message", result)
    return np.asarray(result.images[0])


def test_prompt_tag_changes_the_image_weight_zero_and_removal_give_the_base_pixels(flux, tmp_path):
    tensors, _ = kohya_file(flux)
    save_file(tensors, str(tmp_path / "inkstyle.safetensors"), metadata={"ss_base_model_version": "flux1"})
    library = NetworkLibrary([tmp_path], [], [])
    base = image(generate(flux, request("a fox"), networks=library))
    styled = generate(flux, request("a fox <lora:inkstyle:1>"), networks=library)
    assert not np.array_equal(image(styled), base)
    record = styled.metadata["loras"]
    assert record[0]["name"] == "inkstyle" and len(record[0]["hash"]) == 12 and record[0]["weight"] == 1.0
    settings = a1111_network_settings(1, refs_from_record(record, "lora"), ())
    assert settings[LORA_HASHES_KEY] == f"inkstyle: {record[0]['hash']}"
    assert np.array_equal(image(generate(flux, request("a fox <lora:inkstyle:0>"), networks=library)), base)
    assert np.array_equal(image(generate(flux, request("a fox"), networks=library)), base)


def test_sd_lora_on_flux_and_flux_lora_on_sd_are_refused_in_a_sentence(flux, tiny_model):
    sd_lora = lora_from_tensors(
        kohya_lora(tiny_model.pipe.unet, tiny_model.pipe.text_encoder),
        "sdstyle",
        {"ss_base_model_version": "sd_v1"},
    )
    flux_stack = LoraStack(ModelParts.from_pipe(flux.pipe), model_family="flux")
    with pytest.raises(
        LoraError, match="sdstyle is a LoRA for Stable Diffusion 1.x, but the loaded model is FLUX.1"
    ):
        flux_stack.apply([(sd_lora, 1.0)])
    flux_lora = lora_from_tensors(kohya_file(flux)[0], "fluxstyle")
    sd_stack = LoraStack(ModelParts.from_pipe(tiny_model.pipe), model_family=tiny_model.family)
    with pytest.raises(
        LoraError, match="fluxstyle is a LoRA for FLUX.1, but the loaded model is Stable Diffusion"
    ):
        sd_stack.apply([(flux_lora, 1.0)])


def test_flux_metadata_names_the_family_when_layers_do_not(flux, tiny_model):
    tensors, _ = bfl_file(flux)  # joint blocks only: SD 3 or FLUX by names alone
    network = lora_from_tensors(tensors, "meta", {"modelspec.architecture": "flux-1-dev/lora"})
    sd_stack = LoraStack(ModelParts.from_pipe(tiny_model.pipe), model_family=tiny_model.family)
    with pytest.raises(LoraError, match="meta is a LoRA for FLUX.1"):
        sd_stack.apply([(network, 1.0)])


def test_gguf_quantised_transformer_refuses_loras_in_a_sentence(tmp_path):
    import gguf
    from diffusers.quantizers.gguf.utils import GGUFParameter

    model = load_model(build_tiny_flux(tmp_path / "tiny-flux", seed=2), device="cpu", dtype="float32")
    layer = model.pipe.transformer.single_transformer_blocks[0]
    kind = gguf.GGMLQuantizationType.Q8_0
    raw = gguf.quants.quantize(layer.attn.to_q.weight.detach().numpy(), kind)
    layer.attn.to_q.weight = GGUFParameter(torch.from_numpy(raw), requires_grad=False, quant_type=kind)
    stack = LoraStack(ModelParts.from_pipe(model.pipe), model_family="flux")
    with pytest.raises(LoraError, match="q cannot be applied: this model's transformer is GGUF-quantised"):
        stack.apply([(lora_from_tensors(diffusers_file(model)[0], "q"), 1.0)])


def test_sd3_diffusers_lora_lands_on_its_joint_blocks(tmp_path):
    from tests.flow_models import build_tiny_sd3

    sd3 = load_model(build_tiny_sd3(tmp_path / "tiny-sd3"), device="cpu", dtype="float32")
    layer = sd3.pipe.transformer.transformer_blocks[0].attn.to_q
    before = layer.weight.clone()
    down, up = factors(layer.weight.shape[0], layer.weight.shape[1], 17)
    path = "transformer.transformer_blocks.0.attn.to_q"
    network = lora_from_tensors({f"{path}.lora_A.weight": down, f"{path}.lora_B.weight": up}, "sd3style")
    stack = LoraStack(ModelParts.from_pipe(sd3.pipe), model_family="sd3")
    stack.apply([(network, 0.5)])
    torch.testing.assert_close(layer.weight, before + 0.5 * up @ down, rtol=1e-5, atol=1e-6)
    stack.clear()
    assert torch.equal(layer.weight, before)
