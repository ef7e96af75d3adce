"""Merging kohya LoRAs into the tiny model's weights: weights, removal, several at once, partial fits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ldm_studio.engine.generate import generate
from ldm_studio.engine.lora import LoraError, LoraStack, LoraUse, ModelParts, lora_from_tensors
from ldm_studio.engine.request import GenerationRequest
from tests.engine.lora_factory import (
    kohya_lora,
    ldm_mappable_paths,
    load_own_copy,
    save_safetensors,
    te_kohya_name,
    text_encoder_paths,
    unet_attention_paths,
)


@pytest.fixture
def model(tiny_sd_folder):
    return load_own_copy(tiny_sd_folder)


def snapshot(model) -> dict[str, torch.Tensor]:
    pipe = model.pipe
    weights = {f"unet.{k}": v.clone() for k, v in pipe.unet.state_dict().items()}
    weights.update({f"te.{k}": v.clone() for k, v in pipe.text_encoder.state_dict().items()})
    return weights


def identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], prefix: str = "") -> float:
    return sum(float((a[k].float() - b[k].float()).norm()) for k in a if k.startswith(prefix))


def stack_for(model) -> LoraStack:
    return LoraStack(ModelParts.from_pipe(model.pipe), model_family=model.family)


def network(model, seed: int = 0, **options):
    return lora_from_tensors(
        kohya_lora(model.pipe.unet, model.pipe.text_encoder, seed=seed, **options), f"l{seed}"
    )


def pixels(model, report=None) -> np.ndarray:
    if report is None or report.text_encoders_changed:
        model.embeddings.clear()  # the engine's prompt cache holds encodings made with the old weights
    result = generate(model, GenerationRequest("a red cat", seed=3, steps=2, sampler="Euler"))
    return np.asarray(result.images[0])


def test_weight_zero_leaves_every_weight_exactly_as_it_was(model):
    original = snapshot(model)
    stack = stack_for(model)
    report = stack.apply([(network(model), 0.0)])
    assert report.layers_written == 0
    assert identical(snapshot(model), original)


def test_the_change_grows_with_the_weight_in_both_parts(model):
    original, stack, lora = snapshot(model), stack_for(model), network(model)
    changes = []
    for weight in (0.25, 0.5, 1.0):
        stack.apply([(lora, weight)])
        now = snapshot(model)
        changes.append((distance(now, original, "unet."), distance(now, original, "te.")))
    for part in (0, 1):
        assert 0 < changes[0][part] < changes[1][part] < changes[2][part]
        # ΔW is linear in the weight
        assert changes[2][part] == pytest.approx(4 * changes[0][part], rel=1e-4)


def test_removing_restores_weights_and_pixels_bit_for_bit(model):
    original, before = snapshot(model), pixels(model)
    stack = stack_for(model)
    with_lora = pixels(model, stack.apply([(network(model), 1.0)]))
    assert not np.array_equal(with_lora, before)
    report = stack.clear()
    assert report.text_encoders_changed and stack.patched_layers == 0
    assert identical(snapshot(model), original)
    assert np.array_equal(pixels(model, report), before)


def test_two_loras_add_up(model):
    original, stack = snapshot(model), stack_for(model)
    first, second = network(model, seed=1), network(model, seed=2)
    stack.apply([(first, 0.7)])
    only_first = snapshot(model)
    stack.apply([(second, -0.4)])
    only_second = snapshot(model)
    stack.apply([(first, 0.7), (second, -0.4)])
    both = snapshot(model)
    for key in original:
        expected = only_first[key] + only_second[key] - original[key]
        torch.testing.assert_close(both[key], expected, rtol=0, atol=1e-5)
    assert distance(both, original) > 0


def test_changing_one_weight_rewrites_only_that_loras_layers(model):
    stack = stack_for(model)
    unet_only = lora_from_tensors(kohya_lora(model.pipe.unet, None, seed=4), "unet-only")
    te_only_paths = text_encoder_paths(model.pipe.text_encoder)
    both = network(model, seed=5, unet_paths=[])
    assert both.count("unet") == 0 and both.count("te1") == len(te_only_paths)
    stack.apply([(unet_only, 1.0), (both, 1.0)])
    assert stack.apply([(unet_only, 1.0), (both, 1.0)]).layers_written == 0
    report = stack.apply([(unet_only, 1.0), (both, 0.5)])
    assert report.layers_written == len(te_only_paths)
    assert report.changed_parts == {"te1"}


def test_separate_text_encoder_and_unet_weights(model):
    original, stack = snapshot(model), stack_for(model)
    report = stack.apply([LoraUse(network(model), text_encoder_weight=0.0, unet_weight=1.0)])
    now = snapshot(model)
    assert not report.text_encoders_changed
    assert distance(now, original, "te.") == 0 and distance(now, original, "unet.") > 0
    report = stack.apply([(network(model), 1.0, 0.0)])
    now = snapshot(model)
    assert report.text_encoders_changed
    assert distance(now, original, "unet.") == 0 and distance(now, original, "te.") > 0


def test_original_ldm_unet_names_land_on_the_same_layers_as_diffusers_names(model):
    paths = ldm_mappable_paths(model.pipe.unet)
    assert any(".resnets." in p for p in paths) and any("samplers" in p for p in paths)
    stack = stack_for(model)
    ldm = lora_from_tensors(kohya_lora(model.pipe.unet, None, unet_paths=paths, naming="ldm", seed=6), "ldm")
    dif = lora_from_tensors(kohya_lora(model.pipe.unet, None, unet_paths=paths, seed=6), "diffusers")
    assert stack.fit(ldm).notice == "" and len(stack.fit(ldm).targets) == len(paths)
    stack.apply([(ldm, 1.0)])
    by_ldm = snapshot(model)
    stack.apply([(dif, 1.0)])
    assert identical(snapshot(model), by_ldm)


def test_half_precision_weights_get_float32_deltas_cast_once(tiny_sd_folder):
    model = load_own_copy(tiny_sd_folder, torch.float16)
    lora = network(model, seed=7)
    path = unet_attention_paths(model.pipe.unet)[3]
    layer = model.pipe.unet.get_submodule(path)
    w0 = layer.weight.detach().clone()
    stack = stack_for(model)
    stack.apply([(lora, 0.8)])
    patch = next(p for (part, name), p in lora.layers.items() if name.endswith(path.replace(".", "_")))
    factors = {name: tensor.double() for name, tensor in patch.factors.items()}
    exact = w0.double() + 0.8 * patch.multiplier * (factors["up"] @ factors["down"])
    first = layer.weight.detach().clone()
    assert first.dtype == torch.float16
    # one rounding to fp16 of a float32 sum: within half an fp16 step of the exact value
    torch.testing.assert_close(first.double(), exact, rtol=2**-11 * 1.001, atol=2**-25)
    for weight in (0.3, 1.7, 0.8):  # always from W0: no rounding builds up
        stack.apply([(lora, weight)])
    assert torch.equal(layer.weight, first)
    stack.clear()
    assert torch.equal(layer.weight, w0)


def test_partly_matching_lora_is_applied_with_a_notice_naming_the_part(model):
    tensors = kohya_lora(model.pipe.unet, model.pipe.text_encoder, seed=8)
    for name in ("lora_unet_down_blocks_7_attentions_0_proj_in", te_kohya_name("encoder.layers.9.mlp.fc1")):
        tensors[f"{name}.lora_down.weight"] = torch.zeros(4, 16)
        tensors[f"{name}.lora_up.weight"] = torch.zeros(16, 4)
    report = stack_for(model).apply([(lora_from_tensors(tensors, "partial"), 1.0)])
    (notice,) = report.notices
    unet_total = len(unet_attention_paths(model.pipe.unet)) + 1
    te_total = len(text_encoder_paths(model.pipe.text_encoder)) + 1
    assert f"1 of {unet_total} UNet layers" in notice and f"1 of {te_total} text encoder layers" in notice
    assert "partial" in notice and report.layers_written == unet_total - 1 + te_total - 1


def test_lora_that_matches_nothing_is_refused(model):
    tensors = {
        "lora_unet_down_blocks_7_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 16),
        "lora_unet_down_blocks_7_attentions_0_proj_in.lora_up.weight": torch.zeros(16, 4),
    }
    with pytest.raises(LoraError, match=r"None of the 1 layers of nothing \(1 UNet\) match"):
        stack_for(model).apply([(lora_from_tensors(tensors, "nothing"), 1.0)])


def test_lora_with_other_shapes_is_refused_and_nothing_is_written(model):
    original = snapshot(model)
    tensors = kohya_lora(model.pipe.unet, None, seed=9)
    key = "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k"
    tensors[f"{key}.lora_down.weight"] = torch.zeros(4, 768)  # SD 1.x's CLIP width where the model has 16
    good = network(model, seed=10)
    with pytest.raises(LoraError, match=r"does not fit this model: 1 of its \d+ layers have other shapes"):
        stack_for(model).apply([(good, 1.0), (lora_from_tensors(tensors, "wide"), 1.0)])
    assert identical(snapshot(model), original)


def test_sdxl_lora_on_an_sd1_model_is_refused_in_words(model):
    tensors = kohya_lora(model.pipe.unet, model.pipe.text_encoder, seed=11)
    name = te_kohya_name("encoder.layers.0.self_attn.q_proj", prefix="lora_te2_")
    tensors[f"{name}.lora_down.weight"] = torch.zeros(4, 1280)
    tensors[f"{name}.lora_up.weight"] = torch.zeros(1280, 4)
    with pytest.raises(
        LoraError, match="is a LoRA for Stable Diffusion XL, but the loaded model is Stable Diffusion 1"
    ):
        stack_for(model).apply([(lora_from_tensors(tensors, "xl"), 1.0)])


def test_non_finite_weight_is_refused(model):
    with pytest.raises(LoraError, match="not a number"):
        stack_for(model).apply([(network(model), float("nan"))])


def test_stack_loads_files_once_and_rereads_a_changed_file(model, tmp_path):
    path = save_safetensors(
        kohya_lora(model.pipe.unet, model.pipe.text_encoder, seed=12), tmp_path / "a.safetensors"
    )
    stack = stack_for(model)
    first = stack.load(path)
    assert stack.load(path) is first
    save_safetensors(kohya_lora(model.pipe.unet, model.pipe.text_encoder, seed=13), path)
    import os

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = stack.load(path)
    assert second is not first
    original = snapshot(model)
    stack.apply([(first, 1.0)])
    stack.apply([(second, 1.0)])
    stack.apply([])
    assert identical(snapshot(model), original)
