"""Timeline, branching, image to image and inpainting on the tiny model."""

import numpy as np
import pytest
from PIL import Image

from ldm_studio.engine.events import Finished, Step
from ldm_studio.engine.generate import Branch, generate
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.samplers import sampler_names


def pixels(result) -> np.ndarray:
    assert isinstance(result, Finished), result
    return np.stack([np.asarray(image, dtype=np.int16) for image in result.images])


@pytest.mark.parametrize("sampler", sampler_names())
def test_timeline_keeps_one_frame_per_real_step(tiny_model, sampler):
    events = []
    request = GenerationRequest("cat", seed=4, steps=5, sampler=sampler)
    result = generate(tiny_model, request, events.append, keep_trajectory=True)
    trajectory = result.trajectory
    assert [kept.index for kept in trajectory.steps] == [1, 2, 3, 4, 5]
    assert all(kept.branchable for kept in trajectory.steps)
    steps = [event for event in events if isinstance(event, Step)]
    assert all(step.noisy is not None and step.noisy.shape == step.preview.shape for step in steps)


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2M", "Heun", "UniPC", "DDIM"])
def test_branching_with_the_same_settings_reproduces_the_image(tiny_model, sampler):
    request = GenerationRequest("a fox", seed=9, steps=6, sampler=sampler)
    original = generate(tiny_model, request, keep_trajectory=True)
    for step in (1, 3, 5):
        branch = Branch(original.trajectory, step, original.request)
        again = generate(tiny_model, original.request, branch=branch)
        assert np.array_equal(pixels(again), pixels(original)), f"branch from step {step} differs"
        assert again.metadata["branch_step"] == step and again.metadata["parent_seed"] == 9


def test_branching_with_a_new_prompt_or_sampler_changes_only_the_rest(tiny_model):
    request = GenerationRequest("a fox", seed=9, steps=6, sampler="Euler")
    original = generate(tiny_model, request, keep_trajectory=True)
    events = []
    branch = Branch(original.trajectory, 3, original.request)
    changed = generate(tiny_model, original.request.replace(prompt="a whale"), events.append, branch=branch)
    assert [event.index for event in events if isinstance(event, Step)] == [4, 5, 6]
    assert not np.array_equal(pixels(changed), pixels(original))
    assert [kept.index for kept in changed.trajectory.steps] == [1, 2, 3, 4, 5, 6]
    other = generate(tiny_model, original.request.replace(sampler="DPM++ 2M", guidance=3), branch=branch)
    assert isinstance(other, Finished) and np.isfinite(pixels(other)).all()


@pytest.fixture
def source_png(tmp_path):
    rng = np.random.default_rng(0)
    array = np.zeros((16, 16, 3), dtype=np.uint8)
    array[:, :8] = (220, 30, 40)
    array[:, 8:] = (20, 200, 90)
    array += rng.integers(0, 10, size=array.shape, dtype=np.uint8)
    path = tmp_path / "source.png"
    Image.fromarray(array).save(path)
    return path, array


def test_image_to_image_strength_zero_returns_the_input(tiny_model, source_png):
    path, array = source_png
    result = generate(
        tiny_model, GenerationRequest("x", seed=1, steps=10, init_image=str(path), strength=0.0)
    )
    assert np.abs(pixels(result)[0] - array).max() <= 1
    assert result.metadata["init_image_path"] == str(path) and len(result.metadata["init_image_sha256"]) == 64


def test_image_to_image_strength_one_ignores_the_input(tiny_model, source_png):
    path, _ = source_png
    plain = generate(tiny_model, GenerationRequest("x", seed=1, steps=4))
    full = generate(tiny_model, GenerationRequest("x", seed=1, steps=4, init_image=str(path), strength=1.0))
    assert np.array_equal(pixels(plain), pixels(full))


def test_image_to_image_partial_strength_runs_the_later_steps(tiny_model, source_png):
    path, _ = source_png
    events = []
    request = GenerationRequest("x", seed=1, steps=10, init_image=str(path), strength=0.5, sampler="DDIM")
    result = generate(tiny_model, request, events.append)
    assert [event.index for event in events if isinstance(event, Step)] == [6, 7, 8, 9, 10]
    assert isinstance(result, Finished)


def test_inpainting_never_changes_pixels_outside_the_mask(tiny_model, source_png, tmp_path):
    path, array = source_png
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[4:12, 4:12] = 255
    mask_path = tmp_path / "mask.png"
    Image.fromarray(mask).save(mask_path)
    request = GenerationRequest("x", seed=3, steps=6, init_image=str(path), strength=1.0, mask=str(mask_path))
    result = pixels(generate(tiny_model, request))[0]
    outside = mask == 0
    assert np.abs(result[outside] - array[outside]).max() <= 1
    assert np.abs(result[~outside] - array[~outside]).mean() > 5  # the masked square was repainted


def test_a_missing_source_image_is_a_clear_failure(tiny_model, tmp_path):
    result = generate(tiny_model, GenerationRequest("x", seed=1, init_image=str(tmp_path / "nope.png")))
    assert "does not exist" in result.message


def test_a_nine_channel_inpainting_model_repaints_only_the_mask(tmp_path, source_png):
    from ldm_studio.engine.loader import load_model
    from tests.tiny_models import build_tiny_sd

    model = load_model(build_tiny_sd(tmp_path / "tiny-inpaint", inpainting=True), device="cpu")
    assert model.pipe.unet.config.in_channels == 9
    path, array = source_png
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[2:10, 6:14] = 255
    mask_path = tmp_path / "mask.png"
    Image.fromarray(mask).save(mask_path)
    request = GenerationRequest("x", seed=2, steps=4, init_image=str(path), strength=1.0, mask=str(mask_path))
    result = pixels(generate(model, request))[0]
    outside = mask == 0
    assert np.abs(result[outside] - array[outside]).max() <= 1
    assert np.abs(result[~outside] - array[~outside]).mean() > 5
