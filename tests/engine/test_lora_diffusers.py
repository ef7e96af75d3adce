"""Our merge against diffusers' own ``load_lora_weights`` (peft) on the same kohya file."""

from __future__ import annotations

import torch

from ldm_studio.engine.lora import LoraStack, ModelParts
from tests.engine.lora_factory import kohya_lora, load_own_copy, save_safetensors


@torch.no_grad()
def outputs(pipe, sample, timestep, tokens):
    hidden = pipe.text_encoder(tokens)[0]
    return hidden, pipe.unet(sample, timestep, encoder_hidden_states=hidden).sample


def test_merged_lora_matches_diffusers_load_lora_weights(tiny_sd_folder, tmp_path):
    from diffusers import StableDiffusionPipeline

    ours = load_own_copy(tiny_sd_folder)
    path = save_safetensors(
        kohya_lora(ours.pipe.unet, ours.pipe.text_encoder, rank=4, alpha=3.0, seed=40),
        tmp_path / "k.safetensors",
    )
    theirs = StableDiffusionPipeline.from_pretrained(tiny_sd_folder, local_files_only=True)
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 8, 8, generator=generator)
    timestep = torch.tensor([500])
    tokens = torch.randint(0, ours.pipe.tokenizer.vocab_size - 2, (1, 16), generator=generator)
    plain = outputs(theirs, sample, timestep, tokens)

    theirs.load_lora_weights(str(path), adapter_name="k")
    stack = LoraStack(ModelParts.from_pipe(ours.pipe), model_family=ours.family)
    network = stack.load(path)
    for weight in (1.0, 0.6):
        theirs.set_adapters(["k"], [weight])
        stack.apply([(network, weight)])
        reference, merged = (
            outputs(theirs, sample, timestep, tokens),
            outputs(ours.pipe, sample, timestep, tokens),
        )
        for expected, got, untouched in zip(reference, merged, plain, strict=True):
            assert (expected - untouched).abs().max() > 1e-3  # the LoRA does change the output
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
