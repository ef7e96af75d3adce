"""LCM and TCD samplers, schedule types, and LCM-distilled UNets (guidance as an embedding).

Each image is compared with a bare diffusers pipeline on the same tiny model and seed: the engine
must give the very same pixels, and run one network pass per step where it should.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.engine import same_pixels_cases as cases


@pytest.fixture(scope="module")
def lcm_folder(tmp_path_factory, tiny_sd_folder):
    """The tiny SD model with an LCM-distilled-style UNet: ``time_cond_proj_dim`` takes the w-embedding."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd_folder, local_files_only=True)
    config = dict(pipe.unet.config)
    config["time_cond_proj_dim"] = 8
    torch.manual_seed(3)
    pipe.unet = UNet2DConditionModel.from_config(config)
    folder = tmp_path_factory.mktemp("tiny-lcm") / "model"
    pipe.save_pretrained(folder)
    return folder


def load(folder):
    from ldm_studio.engine.loader import load_model

    with cases.one_thread():
        return load_model(folder, device="cpu", dtype=cases.PRECISION)


@pytest.fixture(scope="module")
def sd(tiny_sd_folder):
    return load(tiny_sd_folder)


@pytest.fixture(scope="module")
def lcm(lcm_folder):
    return load(lcm_folder)


@pytest.fixture(autouse=True)
def single_thread():
    with cases.one_thread():
        yield


def bare_images(model, request, **options) -> np.ndarray:
    """The same request through diffusers' own StableDiffusionPipeline."""
    from diffusers import StableDiffusionPipeline

    from ldm_studio.engine.samplers import make_scheduler

    bare = StableDiffusionPipeline.from_pretrained(model.path, local_files_only=True)
    bare.set_progress_bar_config(disable=True)
    bare.scheduler = make_scheduler(request.sampler, model.base_scheduler_config, request.schedule)
    generators = [torch.Generator("cpu").manual_seed(request.seed_for(i)) for i in range(request.batch_size)]
    images = bare(
        request.prompt,
        negative_prompt=request.negative_prompt,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance,
        height=16,
        width=16,
        generator=generators,
        num_images_per_prompt=request.batch_size,
        output_type="np",
        **options,
    ).images
    return (images * 255).round().astype(np.uint8)


def count_calls(model) -> tuple[list[int], object]:
    """Batch sizes the UNet is called with, and the hook handle to remove."""
    calls: list[int] = []
    handle = model.pipe.unet.register_forward_pre_hook(lambda _m, args: calls.append(args[0].shape[0]))
    return calls, handle


@pytest.mark.parametrize(
    ("sampler", "schedule", "guidance", "options"),
    [
        ("LCM", "Automatic", 1.5, {}),  # LCM-LoRA style: an ordinary UNet with CFG
        ("LCM", "Automatic", 1.0, {}),
        ("TCD", "Automatic", 1.0, {"eta": 0.3}),  # diffusers passes TCD's gamma as ``eta``
        ("Euler", "SGM Uniform", 1.0, {}),  # SDXL-Lightning's recipe: Euler, trailing spacing
        ("DDIM", "SGM Uniform", 1.0, {}),  # Hyper-SD's DDIM trailing
        ("DPM++ 2M", "Karras", 4.0, {}),
        ("Euler", "Exponential", 4.0, {}),
        ("DPM++ 2M SDE", "Beta", 4.0, {}),
    ],
)
def test_few_step_samplers_and_schedules_equal_a_bare_pipeline(sd, sampler, schedule, guidance, options):
    request = cases.make_request(sampler=sampler, schedule=schedule, guidance=guidance, steps=4, batch_size=2)
    ours = cases.as_array(cases.run(sd, request))
    assert np.array_equal(ours, bare_images(sd, request, **options))


def test_an_lcm_unet_gets_the_guidance_embedding_and_one_pass_per_step(lcm):
    request = cases.make_request(sampler="LCM", guidance=6.0, steps=4, batch_size=2)
    calls, handle = count_calls(lcm)
    try:
        ours = cases.as_array(cases.run(lcm, request))
    finally:
        handle.remove()
    # guidance 6 but no CFG batch: the UNet embeds w = 5 itself, as diffusers decides
    assert calls == [2, 2, 2, 2]
    assert np.array_equal(ours, bare_images(lcm, request))
    # and the embedding matters: another guidance gives another image
    other = cases.as_array(cases.run(lcm, request.replace(guidance=2.0)))
    assert np.abs(other.astype(int) - ours.astype(int)).max() > 0


@pytest.mark.parametrize("sampler", ["LCM", "TCD"])
def test_cfg_one_runs_one_unet_pass_per_step(sd, sampler):
    calls, handle = count_calls(sd)
    try:
        cases.run(sd, cases.make_request(sampler=sampler, guidance=1.0, steps=3))
        one = list(calls)
        calls.clear()
        cases.run(sd, cases.make_request(sampler=sampler, guidance=3.0, steps=3))
    finally:
        handle.remove()
    assert one == [1, 1, 1]
    assert calls == [2, 2, 2]  # CFG: unconditional and conditional in one batch


def test_tcd_gamma_changes_the_image_and_zero_is_deterministic(sd):
    base = cases.make_request(sampler="TCD", guidance=1.0, steps=4)
    default = cases.as_array(cases.run(sd, base))
    same = cases.as_array(cases.run(sd, base.replace(extras={"tcd_gamma": 0.3})))
    zero = cases.as_array(cases.run(sd, base.replace(extras={"tcd_gamma": 0.0})))
    zero_other_seed = cases.as_array(cases.run(sd, base.replace(extras={"tcd_gamma": 0.0}, seed=99)))
    assert np.array_equal(default, same)
    assert not np.array_equal(default, zero)
    assert zero.shape == zero_other_seed.shape
    bad = cases.run(sd, base.replace(extras={"tcd_gamma": 2}))
    assert "TCD gamma must be between 0 and 1" in bad.message


def test_lcm_and_tcd_preview_their_own_x0(sd):
    from ldm_studio.engine.events import Step
    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.preview import PreviewMode, PreviewSettings

    for sampler in ("LCM", "TCD"):
        steps: list[Step] = []
        result = generate(
            sd,
            cases.make_request(sampler=sampler, guidance=1.0, steps=4),
            lambda e, kept=steps: kept.append(e) if isinstance(e, Step) else None,
            preview=PreviewSettings(PreviewMode.FAST, every=1),
        )
        assert [s.index for s in steps] == [1, 2, 3, 4], sampler
        assert all(s.preview is not None and s.preview.std() > 0 for s in steps), sampler
        assert cases.as_array(result).shape == (1, 16, 16, 3)


def test_img2img_and_a_branch_work_with_lcm(sd, tmp_path):
    from ldm_studio.engine.generate import Branch

    inputs = cases.write_inputs(tmp_path)
    img2img = cases.make_request(
        sampler="LCM", guidance=1.0, steps=4, init_image=str(inputs / "source16.png"), strength=0.5
    )
    seen: list[int] = []
    handle = sd.pipe.unet.register_forward_pre_hook(lambda _m, args: seen.append(int(args[1])))
    try:
        result = cases.run(sd, img2img)
    finally:
        handle.remove()
    # strength 0.5 of LCM's 4 steps (999, 759, 499, 259): the schedule is entered halfway
    assert seen == [499, 259]
    assert cases.as_array(result).shape == (1, 16, 16, 3)
    original = cases.run(sd, cases.make_request(sampler="LCM", guidance=1.0, steps=4), keep_trajectory=True)
    again = cases.run(sd, original.request, branch=Branch(original.trajectory, 2, original.request))
    assert np.array_equal(cases.as_array(again), cases.as_array(original))


def test_a_branch_with_another_schedule_type_is_not_resumed_as_the_same_path(sd):
    from ldm_studio.engine.generate import Branch

    original = cases.run(sd, cases.make_request(sampler="Euler", steps=4), keep_trajectory=True)
    changed = original.request.replace(schedule="SGM Uniform")
    assert not Branch(original.trajectory, 2, original.request).same_path(changed)
    result = cases.run(sd, changed, branch=Branch(original.trajectory, 2, original.request))
    assert not np.array_equal(cases.as_array(result), cases.as_array(original))


def test_old_karras_names_equal_the_new_pairing(sd):
    old = cases.as_array(cases.run(sd, cases.make_request(sampler="DPM++ 2M Karras", steps=4)))
    new = cases.as_array(cases.run(sd, cases.make_request(sampler="DPM++ 2M", schedule="Karras", steps=4)))
    assert np.array_equal(old, new)


def test_a_schedule_the_sampler_cannot_take_is_refused_in_words(sd):
    result = cases.run(sd, cases.make_request(sampler="LCM", schedule="Karras"))
    assert result.message == ("The LCM sampler cannot use the Karras schedule type; it takes Automatic.")
    result = cases.run(sd, cases.make_request(sampler="DPM++ 2M Karras", schedule="Exponential"))
    assert result.message.startswith("DPM++ 2M Karras already names its schedule (Karras); choose DPM++ 2M")
