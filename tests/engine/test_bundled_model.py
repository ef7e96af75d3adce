"""The model the app opens on: it ships in the repo, loads offline through the one engine path, and
draws what it is asked for."""

from __future__ import annotations

import numpy as np
import pytest

from ldm_studio.app.catalog import default_model
from ldm_studio.engine.events import Finished
from ldm_studio.engine.generate import generate
from ldm_studio.engine.loader import load_model
from ldm_studio.engine.request import GenerationRequest


@pytest.fixture(scope="module")
def bundled():
    path = default_model()
    assert path is not None and path.name == "emoji-ldm"
    return load_model(path, device="cpu")


def test_the_bundled_model_loads_quietly_as_a_32_px_v_model(capfd):
    model = load_model(default_model(), device="cpu")
    assert (model.family, model.native_size, model.prediction_type) == ("ldm-studio", 32, "v_prediction")
    assert type(model.pipe.text_encoder).__name__ == "BertModel"  # MiniLM-L6 from its pip package
    assert "Expected types" not in capfd.readouterr().err  # its own text encoder is no mismatch to report
    model.unload()


def red_share(image) -> float:
    """How much of the drawn (non-white) area is clearly red."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    drawn = pixels.min(axis=2) < 200
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 110) & (pixels[..., 2] < 110)
    return float((red & drawn).sum() / max(1, drawn.sum()))


def test_a_red_heart_is_red_and_a_cactus_is_not(bundled):
    hearts = generate(bundled, GenerationRequest("red heart", seed=0, steps=20, guidance=5, batch_size=2))
    cacti = generate(bundled, GenerationRequest("cactus", seed=0, steps=20, guidance=5, batch_size=2))
    assert isinstance(hearts, Finished) and isinstance(cacti, Finished)
    assert hearts.images[0].size == (32, 32)
    assert min(red_share(image) for image in hearts.images) > 0.5
    assert max(red_share(image) for image in cacti.images) < 0.1


def test_every_euler_a_step_count_stays_finite_despite_the_huge_first_sigma(bundled):
    # sigma falls from ~2e4 to ~1.75 in the first of 3 steps: in float32 that gave NaN
    for steps in (2, 3, 4):
        result = generate(bundled, GenerationRequest("cat face", seed=1, steps=steps, sampler="Euler a"))
        assert isinstance(result, Finished), result


def test_a_karras_sampler_that_cannot_work_here_is_refused_in_words(bundled):
    from ldm_studio.engine.events import Failed

    result = generate(bundled, GenerationRequest("cat face", seed=1, steps=20, sampler="DPM++ 2M Karras"))
    assert isinstance(result, Failed)
    assert "noise schedule" in result.message and "DPM++ 2M or Euler a" in result.message
    assert isinstance(generate(bundled, GenerationRequest("cat face", seed=1, steps=20)), Finished)


def test_a_schedule_type_that_collapses_here_is_refused_and_few_step_samplers_draw(bundled):
    from ldm_studio.engine.events import Failed

    karras = GenerationRequest("cat face", seed=1, steps=20, sampler="DPM++ 2M", schedule="Karras")
    result = generate(bundled, karras)
    assert isinstance(result, Failed)
    assert result.message.startswith("The Karras schedule type does not work with this model's noise")
    # LCM and TCD in 4 steps without CFG still draw the cat face on this (undistilled) model: mostly
    # yellow, like the 20-step Euler a image
    for sampler in ("LCM", "TCD"):
        few = GenerationRequest("cat face", seed=1, steps=4, guidance=1.0, sampler=sampler)
        image = generate(bundled, few)
        assert isinstance(image, Finished), image
        pixels = np.asarray(image.images[0].convert("RGB"), dtype=np.float32)
        yellow = (pixels[..., 0] > 180) & (pixels[..., 1] > 130) & (pixels[..., 2] < 120)
        assert yellow.mean() > 0.3, (sampler, yellow.mean())
