"""The example LoRA shipped with the app: found by name, fits the bundled model on every layer, loads
in diffusers too, weight 0 is the base model, and its card carries the licence and attribution."""

from __future__ import annotations

import numpy as np
from safetensors import safe_open

from ldm_studio.engine.generate import generate
from ldm_studio.engine.loader import load_model
from ldm_studio.engine.networks import NetworkLibrary
from ldm_studio.engine.preview_settings import PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.paths import resource
from tests.training.test_lora_training import EMOJI_MODEL, check_loads_in_diffusers

FOLDER = resource("loras", "openmoji-style")
FILE = FOLDER / "openmoji-style.safetensors"


def test_the_example_lora_is_in_the_library_under_its_name():
    assert NetworkLibrary.default().lora_path("openmoji-style") == FILE


def test_its_card_gives_the_licence_and_openmojis_attribution():
    card = (FOLDER / "README.md").read_text(encoding="utf-8")
    assert "CC BY-SA 4.0" in card and "OpenMoji" in card
    assert "All emojis designed by OpenMoji – the open-source emoji and icon project" in card
    metadata = safe_open(str(FILE), "pt").metadata()
    assert metadata["ss_base_model_version"] == "ldm_studio"
    assert int(metadata["ss_network_dim"]) > 0 and "ss_tag_frequency" in metadata


def test_every_layer_fits_the_bundled_model_and_weight_0_is_the_base_model():
    model = load_model(EMOJI_MODEL, device="cpu", dtype="float32")
    off = PreviewSettings("off")

    def pixels(prompt: str) -> np.ndarray:
        result = generate(model, GenerationRequest(prompt, seed=3, steps=8, guidance=4.0), preview=off)
        assert type(result).__name__ == "Finished", result
        notices = [str(note) for note in result.metadata.get("notices", [])]
        assert not any("match" in note for note in notices), notices  # no layer left unmatched
        return np.asarray(result.images[0], dtype=np.int16)

    base = pixels("grinning face")
    assert np.array_equal(pixels("grinning face <lora:openmoji-style:0>"), base)
    assert np.abs(pixels("grinning face <lora:openmoji-style:1>") - base).mean() > 2


def test_it_loads_in_diffusers_onto_every_layer():
    rank = int(safe_open(str(FILE), "pt").metadata()["ss_network_dim"])
    alpha = float(safe_open(str(FILE), "pt").metadata()["ss_network_alpha"])
    loaded = load_model(EMOJI_MODEL, device="cpu", dtype="float32")
    with safe_open(str(FILE), "pt") as tensors:
        targets = "locon" if any("_resnets_" in key for key in tensors.keys()) else "transformer"  # noqa: SIM118
    check_loads_in_diffusers(loaded.pipe, "ldm-studio", FILE, rank, alpha, targets)
