"""Kohya's LDM-style UNet names on SD 1.x- and SDXL-shaped UNets (tiny widths, real block layouts)."""

from __future__ import annotations

import pytest
from diffusers import UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from ldm_studio.engine.lora.naming import TE1, TE2, UNET, ModelParts, ModuleIndex


def sd1_layout() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=2,
        norm_num_groups=8,
        cross_attention_dim=8,
        attention_head_dim=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )


def sdxl_layout() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(8, 16, 16),
        layers_per_block=2,
        norm_num_groups=8,
        cross_attention_dim=16,
        attention_head_dim=2,
        transformer_layers_per_block=(1, 2, 2),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        addition_embed_type="text_time",
        addition_time_embed_dim=4,
        projection_class_embeddings_input_dim=4 * 6 + 8,
        use_linear_projection=True,
    )


def clip(width: int, projection: bool = False):
    config = CLIPTextConfig(
        hidden_size=width, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2
    )
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


# The names as they appear in real kohya files, with the diffusers module each one is.
SD1_NAMES = {
    "lora_unet_input_blocks_1_1_proj_in": "down_blocks.0.attentions.0.proj_in",
    "lora_unet_input_blocks_2_1_transformer_blocks_0_attn2_to_k": (
        "down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k"
    ),
    "lora_unet_input_blocks_3_0_op": "down_blocks.0.downsamplers.0.conv",
    "lora_unet_input_blocks_4_0_skip_connection": "down_blocks.1.resnets.0.conv_shortcut",
    "lora_unet_input_blocks_11_0_emb_layers_1": "down_blocks.3.resnets.1.time_emb_proj",
    "lora_unet_middle_block_1_transformer_blocks_0_ff_net_2": (
        "mid_block.attentions.0.transformer_blocks.0.ff.net.2"
    ),
    "lora_unet_middle_block_2_in_layers_2": "mid_block.resnets.1.conv1",
    "lora_unet_output_blocks_2_1_conv": "up_blocks.0.upsamplers.0.conv",
    "lora_unet_output_blocks_5_2_conv": "up_blocks.1.upsamplers.0.conv",
    "lora_unet_output_blocks_11_1_proj_out": "up_blocks.3.attentions.2.proj_out",
    "lora_unet_output_blocks_11_0_out_layers_3": "up_blocks.3.resnets.2.conv2",
    "lora_unet_time_embed_0": "time_embedding.linear_1",
    "lora_unet_out_2": "conv_out",
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0": (
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0"
    ),
}
SDXL_NAMES = {
    "lora_unet_input_blocks_0_0": "conv_in",
    "lora_unet_input_blocks_3_0_op": "down_blocks.0.downsamplers.0.conv",
    "lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k": (
        "down_blocks.1.attentions.0.transformer_blocks.1.attn2.to_k"
    ),
    "lora_unet_input_blocks_8_1_proj_in": "down_blocks.2.attentions.1.proj_in",
    "lora_unet_middle_block_1_transformer_blocks_1_attn1_to_q": (
        "mid_block.attentions.0.transformer_blocks.1.attn1.to_q"
    ),
    "lora_unet_output_blocks_2_2_conv": "up_blocks.0.upsamplers.0.conv",
    "lora_unet_output_blocks_5_1_transformer_blocks_0_ff_net_0_proj": (
        "up_blocks.1.attentions.2.transformer_blocks.0.ff.net.0.proj"
    ),
    "lora_unet_output_blocks_8_0_skip_connection": "up_blocks.2.resnets.2.conv_shortcut",
    "lora_unet_label_emb_0_0": "add_embedding.linear_1",
    "lora_unet_label_emb_0_2": "add_embedding.linear_2",
}


@pytest.mark.parametrize(("layout", "names"), [(sd1_layout, SD1_NAMES), (sdxl_layout, SDXL_NAMES)])
def test_ldm_names_find_their_diffusers_module(layout, names):
    index = ModuleIndex.build(ModelParts(layout()))
    found = {name: getattr(index.find(UNET, name), "path", None) for name in names}
    assert found == names


def test_text_encoder_names_for_flat_and_nested_clip_models():
    parts = ModelParts(sdxl_layout(), (clip(8), clip(16, projection=True)))
    index = ModuleIndex.build(parts)
    assert parts.text_widths == (8, 16)
    first = index.find(TE1, "lora_te1_text_model_encoder_layers_0_self_attn_q_proj")
    assert first is not None and first.path == "encoder.layers.0.self_attn.q_proj"  # transformers 5: flat
    assert index.find(TE1, "lora_te_text_model_encoder_layers_0_mlp_fc2").path == "encoder.layers.0.mlp.fc2"
    second = index.find(TE2, "lora_te2_text_model_encoder_layers_0_mlp_fc1")
    assert second is not None and second.path == "text_model.encoder.layers.0.mlp.fc1"
    assert index.find(TE2, "lora_te2_text_projection").path == "text_projection"
    assert index.find(TE2, "text_model.encoder.layers.0.self_attn.out_proj") is not None  # PEFT spelling
    assert index.find(TE1, "lora_te2_text_model_encoder_layers_0_mlp_fc1") is None
