"""The tiny decoder joined to generation: a TINY preview every step, a draft final decode recorded in
the metadata and reused, and the auto-choice rule of the preview mode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import AutoencoderTiny

from ldm_studio.engine.events import Failed, Finished, Step
from ldm_studio.engine.generate import generate
from ldm_studio.engine.preview_choice import PreviewCost, choose_preview, cost_from_run
from ldm_studio.engine.preview_settings import PreviewMode, PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.tiny_decoding import decode_tiny, tiny_decoder_for
from ldm_studio.gallery.metadata import encode_png, read_metadata


def tiny_for_the_tiny_model(latent_channels: int = 4, seed: int = 0) -> AutoencoderTiny:
    """A TAESD with one upsampling (the test model's VAE is f=2)."""
    torch.manual_seed(seed)
    return AutoencoderTiny(
        encoder_block_out_channels=(8, 8),
        decoder_block_out_channels=(8, 8),
        num_encoder_blocks=(1, 1),
        num_decoder_blocks=(1, 1),
        latent_channels=latent_channels,
        scaling_factor=1.0,
    ).eval()


def original_decoder_file(model: AutoencoderTiny, path):
    """The original ``taesd_decoder.pth`` layout: a bare Sequential whose index 0 is the Clamp."""
    tensors = {}
    for key, value in model.state_dict().items():
        part, _, index, rest = key.split(".", 3)
        if part == "decoder":
            tensors[f"{int(index) + 1}.{rest}"] = value.clone()
    torch.save(tensors, path)
    return path


@pytest.fixture()
def layouts(tmp_path):
    model = tiny_for_the_tiny_model()
    folder = tmp_path / "taesd-folder"
    model.save_pretrained(folder)
    pth = original_decoder_file(model, tmp_path / "taesd_decoder.pth")
    return model, {"folder": folder, "original": pth}


def test_both_layouts_decode_the_same_pixels_at_the_vae_size(tiny_model, layouts):
    model, paths = layouts
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    scaling = float(tiny_model.pipe.vae.config.scaling_factor)
    expected = model.decoder(latents / scaling).clamp(-1, 1)
    for path in paths.values():
        images = decode_tiny(tiny_model, latents, path)
        assert images.shape == (1, 3, 16, 16)  # the VAE's f=2, as the model's own decode
        torch.testing.assert_close(images, expected, atol=1e-5, rtol=0)
    assert set(tiny_model.tiny_decoders) >= {str(p) for p in paths.values()}  # loaded once, kept


def test_tiny_preview_is_an_image_of_the_right_size_every_step(tiny_model, layouts):
    _, paths = layouts
    events = []
    request = GenerationRequest("a cat", seed=2, steps=4, width=24, height=16)
    preview = PreviewSettings(PreviewMode.TINY, tiny_decoder=str(paths["original"]))
    result = generate(tiny_model, request, events.append, preview=preview)
    assert isinstance(result, Finished)
    steps = [event for event in events if isinstance(event, Step)]
    assert len(steps) == 4
    for step in steps:
        assert step.preview.shape == (16, 24, 3) and step.preview.dtype == np.uint8
    # it is the tiny decoder's picture, not the Fast projection's
    fast = []
    generate(tiny_model, request, fast.append, preview=PreviewSettings(PreviewMode.FAST))
    fast_last = [event for event in fast if isinstance(event, Step)][-1].preview
    assert np.abs(fast_last.astype(int) - steps[-1].preview.astype(int)).mean() > 1.0


def test_a_tiny_decoder_of_another_family_falls_back_to_the_fast_preview(tiny_model, tmp_path):
    flux_sized = tiny_for_the_tiny_model(latent_channels=16)
    path = original_decoder_file(flux_sized, tmp_path / "taef1_decoder.pth")
    events = []
    request = GenerationRequest("a cat", seed=2, steps=2)
    generate(tiny_model, request, events.append, preview=PreviewSettings("tiny", tiny_decoder=str(path)))
    previews = [event.preview for event in events if isinstance(event, Step)]
    assert all(preview is not None and preview.shape == (16, 16, 3) for preview in previews)
    # as a final decode it is refused with a sentence, never a convolution error
    result = generate(tiny_model, request.replace(decoder=str(path)))
    assert isinstance(result, Failed)
    assert "16-channel" in result.message and "4-channel" in result.message


def test_draft_decode_is_recorded_in_both_chunks_and_reused(tiny_model, layouts, tmp_path):
    model, paths = layouts
    request = GenerationRequest("a dog", seed=5, steps=3, decoder=str(paths["original"]))
    draft = generate(tiny_model, request)
    full = generate(tiny_model, request.replace(decoder=""))
    assert isinstance(draft, Finished) and isinstance(full, Finished)
    assert draft.metadata["draft_decoder"]["name"] == "taesd_decoder"
    assert draft.metadata["draft_decoder"]["layout"] == "original"
    assert draft.metadata["VAE"] == "taesd_decoder"
    assert "draft_decoder" not in full.metadata and "VAE" not in full.metadata
    # the same latents, two decoders: the draft's pixels are the tiny decoder's
    draft_pixels = np.asarray(draft.images[0], dtype=np.float32)
    full_pixels = np.asarray(full.images[0], dtype=np.float32)
    assert np.abs(draft_pixels - full_pixels).mean() > 1.0

    extra = {key: value for key, value in draft.metadata.items()}
    png = tmp_path / "draft.png"
    png.write_bytes(
        encode_png(draft.images[0], draft.request, model_name="tiny", model_hash="abc", extra=extra)
    )
    from PIL import Image

    with Image.open(png) as image:
        parameters = image.info["parameters"]
        ours = json.loads(image.info["ldm-studio"])
    assert ", VAE: taesd_decoder" in parameters
    assert "draft_decoder" not in parameters  # the structured record lives in our JSON only
    metadata = read_metadata(png)
    again = metadata.reuse(GenerationRequest(""), "all")
    assert again.decoder == str(paths["original"])
    assert ours["extra"]["draft_decoder"]["path"] == str(paths["original"])


def test_a_missing_draft_decoder_is_a_sentence(tiny_model, tmp_path):
    result = generate(tiny_model, GenerationRequest("x", seed=1, steps=1, decoder=str(tmp_path / "no.pth")))
    assert isinstance(result, Failed) and "does not exist" in result.message


def test_tiny_decoder_follows_the_vae_dtype(tiny_model, layouts):
    _, paths = layouts
    tiny = tiny_decoder_for(tiny_model, paths["folder"])
    assert next(tiny.model.parameters()).dtype == next(tiny_model.pipe.vae.parameters()).dtype


NO_TINY = "Fast preview: full decode is {}% of a step, no tiny decoder for sd1"


@pytest.mark.parametrize(
    ("decode", "step", "tiny", "mode", "reason"),
    [
        (0.009, 0.100, "", PreviewMode.FULL, "Full preview: decode is 9% of a step"),
        (0.0088, 0.020, "", PreviewMode.FAST, NO_TINY.format(44)),
        (0.0088, 0.020, "/t.pth", PreviewMode.TINY, "Tiny decoder preview: full decode is 44% of a step"),
        (22.3, 12.8, "/t.pth", PreviewMode.TINY, "Tiny decoder preview: full decode is 174% of a step"),
        (0.0149, 0.1, "/t.pth", PreviewMode.FULL, "Full preview: decode is 15% of a step"),
        (0.0151, 0.1, "", PreviewMode.FAST, NO_TINY.format(15)),
    ],
)
def test_the_auto_choice_follows_the_measured_cost(decode, step, tiny, mode, reason):
    choice = choose_preview(PreviewCost(decode, step), tiny, "sd1")
    assert choice.mode is mode
    assert choice.reason == reason


def test_the_auto_choice_before_any_measurement():
    assert choose_preview(None, "", "sdxl").mode is PreviewMode.FAST
    assert choose_preview(None, "/taesdxl_decoder.pth", "sdxl").mode is PreviewMode.TINY


def test_the_cost_comes_from_the_events_of_one_run():
    # 5 steps 0.1 s apart, the final decode 0.5 s after the last
    cost = cost_from_run([0.3, 0.4, 0.5, 0.6, 0.7], 1.2)
    assert cost.decode_seconds == pytest.approx(0.5)
    assert cost.step_seconds == pytest.approx(0.1)
    # a Full preview on every step makes each look 0.02 s longer: taken off again
    cost = cost_from_run([0.3, 0.42, 0.54, 0.66, 0.78], 0.80, full_previews=4)
    assert cost.decode_seconds == pytest.approx(0.02) and cost.step_seconds == pytest.approx(0.1)
    assert cost_from_run([0.3], 1.0) is None
