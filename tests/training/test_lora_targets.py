"""Which UNet layers each LoRA target preset adapts, and that new adapters leave the model unchanged."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNet2DConditionModel

from ldm_studio.training.lora_network import LoraNetwork, unet_layers


@pytest.fixture(scope="module")
def unet() -> UNet2DConditionModel:
    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=8,
        norm_num_groups=8,
    ).eval()


def test_presets_pick_their_layers(unet: UNet2DConditionModel) -> None:
    names = {
        target: [item.name for item in unet_layers(unet, target)]
        for target in ("transformer", "attention", "cross-attention", "locon")
    }
    # 4 transformer blocks (down 1, mid 1, up 2) x 12 layers; 8 attention projections each
    assert len(names["transformer"]) == 48 and len(names["attention"]) == 32
    assert len(names["cross-attention"]) == 16 and all("_attn2_" in n for n in names["cross-attention"])
    convs = [n for n in names["locon"] if "_resnets_" in n]
    assert set(names["locon"]) - set(convs) == set(names["attention"])
    # 2 down + 2 mid + 2 + 2 up ResNets (layers_per_block + 1 per up block), conv1 and conv2 each
    assert len(convs) == 16 and "lora_unet_down_blocks_0_resnets_0_conv1" in convs
    with pytest.raises(ValueError, match="unknown LoRA targets"):
        unet_layers(unet, "everything")


def test_locon_adapters_start_as_the_base_and_then_change_it(unet: UNet2DConditionModel) -> None:
    network = LoraNetwork(unet_layers(unet, "locon"), rank=4, alpha=4)
    conv = network.adapters["lora_unet_down_blocks_0_resnets_0_conv1"]
    assert tuple(conv.down.weight.shape) == (4, 32, 3, 3) and tuple(conv.up.weight.shape) == (32, 4, 1, 1)
    sample, states = torch.randn(1, 4, 8, 8), torch.randn(1, 5, 16)
    with torch.no_grad():
        before = unet(sample, 10, states).sample
        network.attach()
        try:
            assert torch.equal(unet(sample, 10, states).sample, before)
            torch.nn.init.normal_(conv.up.weight, std=0.1)
            assert (unet(sample, 10, states).sample - before).abs().max() > 1e-3
        finally:
            network.detach()
    tensors = network.kohya_state_dict()
    assert tensors["lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight"].shape == (4, 32, 3, 3)
