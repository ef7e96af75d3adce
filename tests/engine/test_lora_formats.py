"""LoCon, LoHa, LoKr and diffusers/PEFT files: ΔW against reference computations; unsafe and foreign files."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ldm_studio.engine.lora import LoraError, LoraStack, ModelParts, lora_from_tensors, read_lora
from tests.engine.lora_factory import (
    kohya_lora,
    load_own_copy,
    malicious_pickle,
    save_safetensors,
    text_encoder_paths,
    unet_attention_paths,
)

CONV = "down_blocks.0.resnets.0.conv1"  # 16 -> 16, 3x3
LINEAR = "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj"  # 16 -> 128
KOHYA_CONV = "lora_unet_" + CONV.replace(".", "_")
KOHYA_LINEAR = "lora_unet_" + LINEAR.replace(".", "_")


@pytest.fixture(scope="module")
def model(tiny_sd_folder):
    """One copy for the module: every test here restores the weights it patched (and checks it)."""
    return load_own_copy(tiny_sd_folder)


def applied_delta(model, tensors: dict[str, torch.Tensor], path: str) -> torch.Tensor:
    """What applying the file at weight 1 adds to the layer at ``path``."""
    layer = model.pipe.unet.get_submodule(path)
    before = layer.weight.detach().clone()
    stack = LoraStack(ModelParts.from_pipe(model.pipe))
    stack.apply([(lora_from_tensors(tensors, "test"), 1.0)])
    delta = layer.weight.detach() - before
    stack.clear()
    assert torch.equal(layer.weight, before)
    return delta


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.2


def test_locon_3x3_delta_is_the_down_then_up_convolution(model):
    down, up = randn(4, 16, 3, 3, seed=1), randn(16, 4, 1, 1, seed=2)
    tensors = {f"{KOHYA_CONV}.lora_down.weight": down, f"{KOHYA_CONV}.lora_up.weight": up}
    tensors[f"{KOHYA_CONV}.alpha"] = torch.tensor(2.0)
    delta = applied_delta(model, tensors, CONV)
    x = randn(1, 16, 8, 8, seed=3)
    reference = F.conv2d(F.conv2d(x, down, padding=1), up) * (2.0 / 4)
    torch.testing.assert_close(F.conv2d(x, delta, padding=1), reference, atol=1e-5, rtol=1e-4)
    assert lora_from_tensors(tensors, "c").network_type == "LoCon"


def test_locon_tucker_mid_delta_is_the_three_convolutions(model):
    down, mid, up = randn(3, 16, 1, 1, seed=4), randn(3, 3, 3, 3, seed=5), randn(16, 3, 1, 1, seed=6)
    tensors = {
        f"{KOHYA_CONV}.lora_down.weight": down,
        f"{KOHYA_CONV}.lora_mid.weight": mid,
        f"{KOHYA_CONV}.lora_up.weight": up,
    }
    delta = applied_delta(model, tensors, CONV)  # no alpha: scale 1
    x = randn(2, 16, 6, 6, seed=7)
    reference = F.conv2d(F.conv2d(F.conv2d(x, down), mid, padding=1), up)
    torch.testing.assert_close(F.conv2d(x, delta, padding=1), reference, atol=1e-5, rtol=1e-4)


def test_loha_delta_is_the_hadamard_product_of_two_low_rank_products(model):
    w1a, w1b, w2a, w2b = (
        randn(128, 2, seed=8),
        randn(2, 16, seed=9),
        randn(128, 2, seed=10),
        randn(2, 16, seed=11),
    )
    names = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")
    tensors = {f"{KOHYA_LINEAR}.{n}": t for n, t in zip(names, (w1a, w1b, w2a, w2b), strict=True)}
    tensors[f"{KOHYA_LINEAR}.alpha"] = torch.tensor(1.0)
    delta = applied_delta(model, tensors, LINEAR)
    reference = torch.einsum("ia,aj,ib,bj->ij", w1a, w1b, w2a, w2b) * (1.0 / 2)
    torch.testing.assert_close(delta, reference, atol=1e-6, rtol=1e-5)
    assert lora_from_tensors(tensors, "h").network_type == "LoHa"


def test_loha_tucker_conv_delta_rebuilds_each_kernel_position(model):
    t1, t2 = randn(2, 2, 3, 3, seed=12), randn(2, 2, 3, 3, seed=13)
    w1a, w1b, w2a, w2b = (
        randn(2, 16, seed=14),
        randn(2, 16, seed=15),
        randn(2, 16, seed=16),
        randn(2, 16, seed=17),
    )
    tensors = {
        f"{KOHYA_CONV}.hada_t1": t1,
        f"{KOHYA_CONV}.hada_t2": t2,
        f"{KOHYA_CONV}.hada_w1_a": w1a,
        f"{KOHYA_CONV}.hada_w1_b": w1b,
        f"{KOHYA_CONV}.hada_w2_a": w2a,
        f"{KOHYA_CONV}.hada_w2_b": w2b,
    }
    delta = applied_delta(model, tensors, CONV)
    reference = torch.zeros(16, 16, 3, 3)
    for k in range(3):
        for m in range(3):
            first = w1a.T @ t1[:, :, k, m] @ w1b
            second = w2a.T @ t2[:, :, k, m] @ w2b
            reference[:, :, k, m] = first * second
    torch.testing.assert_close(delta, reference, atol=1e-6, rtol=1e-5)


def kron_by_blocks(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    rows = [torch.cat([w1[i, j] * w2 for j in range(w1.shape[1])], dim=1) for i in range(w1.shape[0])]
    return torch.cat(rows, dim=0)


def test_lokr_linear_delta_is_the_kronecker_product(model):
    w1, w2a, w2b = randn(4, 2, seed=18), randn(32, 2, seed=19), randn(2, 8, seed=20)
    tensors = {
        f"{KOHYA_LINEAR}.lokr_w1": w1,
        f"{KOHYA_LINEAR}.lokr_w2_a": w2a,
        f"{KOHYA_LINEAR}.lokr_w2_b": w2b,
        f"{KOHYA_LINEAR}.alpha": torch.tensor(1.0),
    }
    delta = applied_delta(model, tensors, LINEAR)
    torch.testing.assert_close(delta, kron_by_blocks(w1, w2a @ w2b) * 0.5, atol=1e-6, rtol=1e-5)
    assert lora_from_tensors(tensors, "k").network_type == "LoKr"


def test_lokr_conv_with_tucker_core_and_decomposed_w1(model):
    w1a, w1b = randn(2, 1, seed=21), randn(1, 2, seed=22)
    t2, w2a, w2b = randn(3, 3, 3, 3, seed=23), randn(3, 8, seed=24), randn(3, 8, seed=25)
    tensors = {
        f"{KOHYA_CONV}.lokr_w1_a": w1a,
        f"{KOHYA_CONV}.lokr_w1_b": w1b,
        f"{KOHYA_CONV}.lokr_t2": t2,
        f"{KOHYA_CONV}.lokr_w2_a": w2a,
        f"{KOHYA_CONV}.lokr_w2_b": w2b,
        f"{KOHYA_CONV}.alpha": torch.tensor(0.5),
    }
    delta = applied_delta(model, tensors, CONV)
    w1 = w1a @ w1b
    w2 = torch.stack(
        [torch.stack([w2a.T @ t2[:, :, k, m] @ w2b for m in range(3)], dim=-1) for k in range(3)], dim=-2
    )
    reference = kron_by_blocks(w1, w2) * (0.5 / 1)  # rank: w1_b's first dimension
    torch.testing.assert_close(delta, reference, atol=1e-6, rtol=1e-5)


def test_diffusers_peft_and_old_processor_keys_equal_the_kohya_file(model):
    unet, te = model.pipe.unet, model.pipe.text_encoder
    kohya = kohya_lora(unet, te, rank=4, alpha=4.0, seed=26)  # alpha = rank: scale 1, as PEFT without alpha
    peft, processors = {}, {}
    for path in unet_attention_paths(unet):
        name = "lora_unet_" + path.replace(".", "_")
        peft[f"unet.{path}.lora_A.weight"] = kohya[f"{name}.lora_down.weight"]
        peft[f"unet.{path}.lora_B.weight"] = kohya[f"{name}.lora_up.weight"]
        if ".attn1." in path or ".attn2." in path:
            block, projection = path.rsplit(".attn", 1)[0], path.split(".attn", 1)[1]
            number, layer = projection.split(".", 1)
            layer = "to_out" if layer == "to_out.0" else layer
            processor = f"{block}.attn{number}.processor.{layer}_lora"
            processors[f"{processor}.down.weight"] = kohya[f"{name}.lora_down.weight"]
            processors[f"{processor}.up.weight"] = kohya[f"{name}.lora_up.weight"]
    for path in text_encoder_paths(te):
        name = "lora_te_text_model_" + path.replace(".", "_")
        peft[f"text_encoder.text_model.{path}.lora_A.weight"] = kohya[f"{name}.lora_down.weight"]
        peft[f"text_encoder.text_model.{path}.lora_B.weight"] = kohya[f"{name}.lora_up.weight"]
    stack = LoraStack(ModelParts.from_pipe(model.pipe))
    results = []
    for tensors in (kohya, peft):
        stack.apply([(lora_from_tensors(tensors, "x"), 1.0)])
        results.append(
            {k: v.clone() for k, v in unet.state_dict().items()}
            | {f"te.{k}": v.clone() for k, v in te.state_dict().items()}
        )
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])
    old = lora_from_tensors(processors, "processors")
    assert stack.fit(old).notice == "" and len(stack.fit(old).targets) == len(processors) // 2
    stack.clear()


def test_peft_alpha_from_diffusers_adapter_metadata_scales_the_delta(model):
    down, up = randn(4, 16, seed=27), randn(128, 4, seed=28)
    tensors = {f"unet.{LINEAR}.lora_A.weight": down, f"unet.{LINEAR}.lora_B.weight": up}
    metadata = {"lora_adapter_metadata": '{"unet.lora_alpha": 8, "unet.r": 4}'}
    network = lora_from_tensors(tensors, "peft", metadata)
    layer = next(iter(network.layers.values()))
    torch.testing.assert_close(layer.delta((128, 16)), up @ down * 2.0)


@pytest.mark.parametrize(
    ("suffix", "type_name"),
    [("dora_scale", "DoRA"), ("oft_blocks", "OFT"), ("a1.weight", "GLoRA"), ("on_input", r"\(IA\)³")],
)
def test_unsupported_lycoris_types_are_refused_by_name(suffix, type_name):
    tensors = {
        f"{KOHYA_LINEAR}.lora_down.weight": torch.zeros(4, 16),
        f"{KOHYA_LINEAR}.{suffix}": torch.zeros(4),
    }
    with pytest.raises(LoraError, match=f"odd is a {type_name} file, which LDM Studio does not apply"):
        lora_from_tensors(tensors, "odd")


def test_a_transformer_lora_is_read_and_a_half_one_refused_in_words():
    """FLUX / SD 3 LoRAs in diffusers' names are read (tests/engine/test_flow_lora.py applies them)."""
    down = {"transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": torch.zeros(4, 16)}
    with pytest.raises(LoraError, match="incomplete: .* has no up factor"):
        lora_from_tensors(down, "flux")
    whole = {**down, "transformer.single_transformer_blocks.0.attn.to_q.lora_B.weight": torch.zeros(16, 4)}
    assert lora_from_tensors(whole, "flux").layers


def test_incomplete_and_mismatched_factors_are_refused_in_words():
    with pytest.raises(LoraError, match="incomplete: its LoRA layer .* has no up factor"):
        lora_from_tensors({f"{KOHYA_LINEAR}.lora_down.weight": torch.zeros(4, 16)}, "half")
    broken = {
        f"{KOHYA_LINEAR}.lora_down.weight": torch.zeros(4, 16),
        f"{KOHYA_LINEAR}.lora_up.weight": torch.zeros(128, 3),
    }
    with pytest.raises(LoraError, match="damaged: the factors of layer .* have impossible shapes"):
        lora_from_tensors(broken, "broken")


def test_pt_lora_reads_like_its_safetensors_twin(model, tmp_path):
    tensors = kohya_lora(model.pipe.unet, model.pipe.text_encoder, seed=29)
    torch.save(tensors, tmp_path / "twin.pt")
    legacy = tmp_path / "legacy.ckpt"
    torch.save({"state_dict": tensors}, legacy, _use_new_zipfile_serialization=False)
    reference = read_lora(save_safetensors(tensors, tmp_path / "twin.safetensors"))
    for path in (tmp_path / "twin.pt", legacy):
        network = read_lora(path)
        assert network.layers.keys() == reference.layers.keys()
        for key, layer in network.layers.items():
            assert layer.alpha == reference.layers[key].alpha
            assert all(torch.equal(t, reference.layers[key].factors[n]) for n, t in layer.factors.items())


@pytest.mark.parametrize("zip_format", [True, False])
def test_malicious_pickle_lora_runs_nothing_and_is_refused(tmp_path, zip_format):
    target = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    if zip_format:
        malicious_pickle(path, target)
    else:
        from tests.engine.lora_factory import CreatesFile

        torch.save({"trap": CreatesFile(target)}, path, _use_new_zipfile_serialization=False)
    assert not target.exists()
    with pytest.raises(LoraError, match="evil.pt was refused"):
        read_lora(path)
    assert not target.exists()


def test_damaged_safetensors_is_refused_in_words(tmp_path):
    path = tmp_path / "cut.safetensors"
    data = save_safetensors(
        {f"{KOHYA_LINEAR}.lora_down.weight": torch.zeros(4, 16)}, tmp_path / "x.safetensors"
    )
    path.write_bytes(data.read_bytes()[:-40])
    with pytest.raises(LoraError, match="cut.safetensors is (truncated|damaged)"):
        read_lora(path)


def test_our_trainers_base_name_for_ldm_studio_models_is_read_back():
    from ldm_studio.engine.lora.fit import family_from_metadata

    assert family_from_metadata({"ss_base_model_version": "ldm_studio"}) == "ldm-studio"
    assert family_from_metadata({"ss_base_model_version": "sd_v1", "ss_v2": "False"}) == "sd1"
