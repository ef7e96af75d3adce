"""Hires fix: A1111's size and step arithmetic, the second pass on a tiny model (size, steps, latent and
pixel upscalers, an upscaler network file), cancel in the second pass and branches from either pass."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from ldm_studio.engine.events import Cancelled, Failed, Finished, Started, Step
from ldm_studio.engine.generate import Branch, generate
from ldm_studio.engine.generation.hires import second_pass_record, truncate, upscale_latents
from ldm_studio.engine.hires_request import LATENT_MODES, HiresFix, second_pass_start, total_steps
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.upscalers import upscaler_folders
from tests.engine.test_upscalers import real_esrgan_keys, tiny_rrdb, write_upscaler

BASE = GenerationRequest("a red apple", seed=7, steps=4, width=32, height=32, sampler="Euler")


def pixels(result) -> np.ndarray:
    assert isinstance(result, Finished), getattr(result, "message", result)
    return np.stack([np.asarray(image) for image in result.images])


def run(model, request, **kwargs):
    events = []
    result = generate(model, request, events.append, **kwargs)
    return result, events


# ---- A1111's arithmetic (processing.py, sd_samplers_common.setup_img2img_steps) --------------------


def test_target_sizes_follow_a1111():
    assert HiresFix(2.0).final_size(512, 512) == (1024, 1024)
    # int(512 * 1.3) = 665, int(768 * 1.3) = 998; latents 83 x 124 -> 664 x 992
    assert HiresFix(1.3).upscale_to(512, 768) == (665, 998)
    assert HiresFix(1.3).final_size(512, 768) == (664, 992)
    # both sides given: cover the box (1024 x 1536), then crop 64 latent rows: 1024 x 1024
    square = HiresFix(resize=(1024, 1024))
    assert square.upscale_to(512, 768) == (1024, 1536)
    assert square.truncation(512, 768) == (0, 64)
    assert square.final_size(512, 768) == (1024, 1024)
    # one side 0 follows the aspect: 1000 x 1500 -> 1000 x 1496 (multiples of 8)
    assert HiresFix(resize=(1000, 0)).final_size(512, 768) == (1000, 1496)
    assert HiresFix(resize=(0, 1024)).final_size(768, 512) == (1536, 1024)
    # a VAE that shrinks by 2 (the tiny test model) crops the same 64 * 8 pixels
    assert square.final_size(512, 768, factor=2) == (1024, 1024)


def test_steps_follow_a1111():
    # Hires steps 10 at 0.7: a 14-step schedule (int(10 / 0.7)), of which the last 10 run
    assert HiresFix(steps=10, strength=0.7).schedule_steps(20) == 14
    assert HiresFix(steps=10, strength=0.7).pass_steps(20) == 10
    assert HiresFix(steps=0, strength=0.5).schedule_steps(20) == 40  # 0: as many as the first pass
    assert HiresFix(steps=20, strength=1.0).schedule_steps(30) == 20  # min(strength, 0.999)
    assert total_steps(20, HiresFix(steps=10)) == 30
    assert total_steps(20, None) == 20
    assert second_pass_start(20, HiresFix()) == 21
    assert second_pass_start(20, None) is None


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"scale": 0.5}, "between 1 and 8"),
        ({"strength": 1.5}, "strength"),
        ({"steps": -1}, "steps"),
        ({"resize": (4, 0)}, "8 pixels"),
        ({"upscaler": " "}, "upscaler"),
        ({"guidance": float("nan")}, "CFG"),
    ],
)
def test_bad_settings_are_refused_in_words(changes, words):
    with pytest.raises(ValueError, match=words):
        HiresFix(**changes)


def test_request_round_trips_hires_through_json():
    request = BASE.replace(hires=HiresFix(1.5, (0, 640), 6, 0.45, "Latent (bicubic)", "DDIM", "p", "n", 5.5))
    again = GenerationRequest.from_dict(json.loads(json.dumps(request.to_dict())))
    assert again == request
    assert again.hires.resize == (0, 640)
    assert GenerationRequest.from_dict(json.loads(json.dumps(BASE.to_dict()))).hires is None
    with pytest.raises(ValueError, match="text to image"):
        BASE.replace(init_image="cat.png", strength=0.5, hires=HiresFix())


def test_latent_modes_are_torchs_interpolations():
    latents = torch.arange(2 * 4 * 3 * 5, dtype=torch.float32).reshape(2, 4, 3, 5)
    nearest = upscale_latents(latents, (6, 10), LATENT_MODES["Latent (nearest)"])
    assert torch.equal(nearest, latents.repeat_interleave(2, 2).repeat_interleave(2, 3))
    bilinear = upscale_latents(latents, (6, 10), LATENT_MODES["Latent"])
    assert torch.allclose(bilinear, torch.nn.functional.interpolate(latents, (6, 10), mode="bilinear"))
    antialiased = upscale_latents(latents, (2, 3), LATENT_MODES["Latent (antialiased)"])
    assert not torch.allclose(antialiased, torch.nn.functional.interpolate(latents, (2, 3), mode="bilinear"))
    cropped = truncate(torch.zeros(1, 4, 20, 12), 3, 0)  # odd cuts: one at the start, two at the end
    assert cropped.shape[-2:] == (20, 9)


# ---- the second pass on the tiny model ----------------------------------------------------------------


def test_second_pass_runs_at_the_larger_size_with_its_own_steps(tiny_model):
    request = BASE.replace(hires=HiresFix(2.0, steps=3, strength=0.5))
    result, events = run(tiny_model, request, keep_trajectory=True)
    assert pixels(result).shape == (1, 64, 64, 3)
    started = [event for event in events if isinstance(event, Started)]
    assert started[0].total_steps == 7
    steps = [event for event in events if isinstance(event, Step)]
    assert [(step.index, step.total) for step in steps] == [(i, 7) for i in range(1, 8)]
    trajectory = result.trajectory
    assert [tuple(kept.latents.shape[-2:]) for kept in trajectory.steps] == [(16, 16)] * 4 + [(32, 32)] * 3
    record = second_pass_record(trajectory)
    assert (record.first_steps, record.request.steps, record.skipped) == (4, 6, 3)  # int(3 / 0.5) = 6
    assert (record.request.width, record.request.height) == (64, 64)


def test_hires_leaves_the_first_pass_as_it_was(tiny_model):
    # (without hires the pixels are held by the golden file: test_same_pixels)
    plain, _ = run(tiny_model, BASE, keep_trajectory=True)
    hires, _ = run(tiny_model, BASE.replace(hires=HiresFix(1.0, steps=2, strength=0.5)), keep_trajectory=True)
    for step in range(1, BASE.steps + 1):  # the first pass's kept steps are the plain generation's
        assert torch.equal(hires.trajectory.step(step).latents, plain.trajectory.step(step).latents)
    assert pixels(hires).shape == pixels(plain).shape
    assert not np.array_equal(pixels(hires), pixels(plain))  # x1: a real second pass changed it
    # nothing to denoise at x1 (strength 0): the first pass's image itself
    untouched = pixels(run(tiny_model, BASE.replace(hires=HiresFix(1.0, strength=0.0)))[0])
    assert np.array_equal(untouched, pixels(plain))


def test_the_second_pass_uses_its_own_sampler_prompt_and_cfg(tiny_model):
    same = HiresFix(2.0, steps=2, strength=0.5)
    reference = pixels(run(tiny_model, BASE.replace(hires=same))[0])
    for change in ({"sampler": "DDIM"}, {"prompt": "a blue pear"}, {"negative_prompt": "blurry"},
                   {"guidance": 2.0}):  # fmt: skip
        changed = pixels(run(tiny_model, BASE.replace(hires=dataclasses.replace(same, **change)))[0])
        assert not np.array_equal(changed, reference), change


def test_latent_and_pixel_upscalers_give_different_images_of_the_same_size(tiny_model):
    results = {}
    for upscaler in ("Latent", "Latent (nearest-exact)", "Lanczos", "Nearest"):
        request = BASE.replace(hires=HiresFix(2.0, steps=2, strength=0.4, upscaler=upscaler))
        results[upscaler] = pixels(run(tiny_model, request)[0])
    assert {image.shape for image in results.values()} == {(1, 64, 64, 3)}
    names = list(results)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            assert not np.array_equal(results[first], results[second]), (first, second)


def test_resize_to_a_box_crops_the_overflow(tiny_model):
    request = BASE.replace(width=32, height=48, hires=HiresFix(resize=(48, 48), steps=1, strength=0.3))
    assert pixels(run(tiny_model, request)[0]).shape == (1, 48, 48, 3)


def test_an_upscaler_network_from_the_library(tiny_model):
    folder = upscaler_folders()[0]
    write_upscaler(folder / "4x-tiny.pth", real_esrgan_keys(tiny_rrdb()), wrap="params_ema")
    network = BASE.replace(hires=HiresFix(2.0, steps=2, strength=0.3, upscaler="4x-tiny"))
    lanczos = BASE.replace(hires=HiresFix(2.0, steps=2, strength=0.3, upscaler="Lanczos"))
    with_network, with_lanczos = pixels(run(tiny_model, network)[0]), pixels(run(tiny_model, lanczos)[0])
    assert with_network.shape == with_lanczos.shape == (1, 64, 64, 3)
    assert np.abs(with_network.astype(int) - with_lanczos.astype(int)).mean() > 1.0


def test_an_unknown_upscaler_fails_in_words(tiny_model):
    result, _ = run(tiny_model, BASE.replace(hires=HiresFix(upscaler="4x-Missing")))
    assert isinstance(result, Failed)
    assert "Hires fix" in result.message and "4x-Missing" in result.message


def test_cancel_in_the_second_pass(tiny_model):
    request = BASE.replace(hires=HiresFix(2.0, steps=3, strength=0.5))
    seen: list[int] = []

    def on_event(event):
        if isinstance(event, Step):
            seen.append(event.index)

    result = generate(tiny_model, request, on_event, should_stop=lambda: bool(seen) and seen[-1] >= 5)
    assert isinstance(result, Cancelled)
    assert seen == [1, 2, 3, 4, 5]
    assert result.at_step == 5


def test_a_batch_gets_two_second_passes(tiny_model):
    request = BASE.replace(batch_size=2, hires=HiresFix(2.0, steps=1, strength=0.3, upscaler="Lanczos"))
    images = pixels(run(tiny_model, request)[0])
    assert images.shape == (2, 64, 64, 3) and not np.array_equal(images[0], images[1])


# ---- branches ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parent(tiny_model):
    request = BASE.replace(hires=HiresFix(2.0, steps=3, strength=0.6))
    result = generate(tiny_model, request, keep_trajectory=True)
    assert isinstance(result, Finished)
    return result


@pytest.mark.parametrize("step", [2, 5, 6])
def test_a_branch_with_the_same_settings_gives_the_same_image(tiny_model, parent, step):
    events = []
    child = generate(
        tiny_model, parent.request, events.append, branch=Branch(parent.trajectory, step, parent.request)
    )
    assert np.array_equal(pixels(child), pixels(parent))
    steps = [event.index for event in events if isinstance(event, Step)]
    assert steps == list(range(step + 1, 8))
    assert all(event.total == 7 for event in events if isinstance(event, Step))


def test_a_branch_from_the_second_pass_with_another_cfg(tiny_model, parent):
    changed = parent.request.replace(hires=HiresFix(2.0, steps=3, strength=0.6, guidance=2.0))
    events = []
    child = generate(
        tiny_model,
        changed,
        events.append,
        keep_trajectory=True,
        branch=Branch(parent.trajectory, 5, parent.request),
    )
    assert pixels(child).shape == (1, 64, 64, 3)
    assert not np.array_equal(pixels(child), pixels(parent))
    assert [event.index for event in events if isinstance(event, Step)] == [6, 7]
    # the child's trajectory keeps the parent's first five steps, then its own: branchable again
    assert len(child.trajectory) == 7
    assert torch.equal(child.trajectory.step(5).latents, parent.trajectory.step(5).latents)
    assert second_pass_record(child.trajectory).request.guidance == 2.0


def test_upscaler_names_are_read_as_a1111_spells_them():
    assert HiresFix(upscaler="latent (nearest-exact)").upscaler == "Latent (nearest-exact)"
    assert HiresFix(upscaler=" LANCZOS ").latent_mode is None
    assert HiresFix(upscaler="latent").latent_mode == ("bilinear", False)
    assert HiresFix(upscaler="4x-UltraSharp").upscaler == "4x-UltraSharp"


def test_a_vae_of_another_factor_gives_a1111s_pixel_sizes(tiny_model):
    # the tiny VAE shrinks by 2: int(32 * 1.4) = 44 px floors to A1111's 40, as with an f=8 VAE
    assert tiny_model.vae_scale_factor == 2
    for upscaler in ("Latent", "Lanczos"):
        request = BASE.replace(hires=HiresFix(1.4, steps=1, strength=0.3, upscaler=upscaler))
        assert pixels(run(tiny_model, request)[0]).shape == (1, 40, 40, 3)


def test_the_timeline_of_both_passes_exports(tiny_model, parent, tmp_path):
    from ldm_studio.engine.animation import export_animation, timeline_frames

    for full in (False, True):
        frames = timeline_frames(tiny_model, parent.trajectory, (32, 32), full=full)
        assert len(frames) == 7 and len({frame.size for frame in frames}) == 1
        assert export_animation(frames, tmp_path / f"both-{full}.webp").stat().st_size > 0
    assert frames[0].size == (64, 64)  # full decodes: the first pass's frames enlarged to the final size


# ---- a hires sampler that cannot take the first pass's schedule type ----------------------------------


def test_the_second_pass_schedule_falls_back_to_automatic():
    assert HiresFix(sampler="DDIM").pass_schedule("Euler", "Karras") == "Automatic"  # DDIM: spacing only
    assert HiresFix(sampler="DDIM").pass_schedule("Euler", "SGM Uniform") == "SGM Uniform"
    assert HiresFix(sampler="LCM").pass_schedule("Euler", "SGM Uniform") == "Automatic"
    # "DPM++ 2M Karras" already names its spacing (A1111's paste makes it from DPM++ 2M + Karras)
    assert HiresFix(sampler="DPM++ 2M Karras").pass_schedule("Euler", "Karras") == "Automatic"
    assert HiresFix(sampler="Heun").pass_schedule("Euler", "Exponential") == "Exponential"
    assert HiresFix().pass_schedule("Euler", "Karras") == "Karras"  # same sampler: same schedule


def test_a_hires_sampler_without_the_schedule_type_runs_automatic(tiny_model):
    first = BASE.replace(schedule="SGM Uniform")
    for sampler, used in (("LCM", "Automatic"), ("DDIM", "SGM Uniform")):
        request = first.replace(hires=HiresFix(2.0, steps=2, strength=0.5, sampler=sampler))
        result, _ = run(tiny_model, request, keep_trajectory=True)
        assert pixels(result).shape == (1, 64, 64, 3)  # LCM used to fail: "cannot use SGM Uniform"
        record = second_pass_record(result.trajectory)
        assert (record.request.sampler, record.request.schedule) == (sampler, used)
        assert result.request.schedule == "SGM Uniform"  # the request itself is left as asked
