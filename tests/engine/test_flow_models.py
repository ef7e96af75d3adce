"""SD 3.x and FLUX.1 end to end on tiny random-weight diffusers folders (flow matching, transformers).

The key check: the same seed gives exactly the pixels of a bare StableDiffusion3Pipeline / FluxPipeline
on the same folder (CPU, fp32).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ldm_studio.engine.events import Finished, Step
from ldm_studio.engine.generate import generate
from ldm_studio.engine.loader import load_model
from ldm_studio.engine.preview import PreviewMode, PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from tests.flow_models import IMAGE_SIZE, build_tiny_flux, build_tiny_sd3

PROMPT = "a red apple on a wooden table"


@pytest.fixture(scope="module")
def flow_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow")
    return {
        "sd3": build_tiny_sd3(root / "tiny-sd3"),
        "sd35": build_tiny_sd3(root / "tiny-sd35", large=True, seed=5),
        "flux-dev": build_tiny_flux(root / "tiny-flux-dev"),
        "flux-schnell": build_tiny_flux(root / "tiny-flux-schnell", dev=False, seed=7),
    }


@pytest.fixture(scope="module")
def flow_models(flow_folders):
    return {name: load_model(folder, device="cpu", dtype="float32") for name, folder in flow_folders.items()}


def request_for(sampler: str = "Euler", **changes) -> GenerationRequest:
    base = dict(
        prompt=PROMPT,
        negative_prompt="blurry",
        seed=42,
        steps=4,
        guidance=4.5,
        width=IMAGE_SIZE,
        height=IMAGE_SIZE,
        sampler=sampler,
    )
    return GenerationRequest(**{**base, **changes})


def pixels(result) -> np.ndarray:
    assert isinstance(result, Finished), getattr(result, "message", result)
    return np.stack([np.asarray(image) for image in result.images])


def bare_pipeline(folder, family: str, **parts):
    from diffusers import FluxPipeline, StableDiffusion3Pipeline

    pipeline_class = FluxPipeline if family == "flux" else StableDiffusion3Pipeline
    pipe = pipeline_class.from_pretrained(folder, local_files_only=True, **parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_detection_of_family_and_variant(flow_folders, flow_models):
    from ldm_studio.engine.checkpoints import inspect_model
    from ldm_studio.engine.flow_models import folder_variant

    expected = {
        "sd3": ("sd3", "SD 3"),
        "sd35": ("sd3", "SD 3.5 Large"),
        "flux-dev": ("flux", "FLUX.1 dev"),
        "flux-schnell": ("flux", "FLUX.1 schnell"),
    }
    for name, (family, variant) in expected.items():
        info = inspect_model(flow_folders[name])
        assert (info.family, info.loadable, info.notes) == (family, True, (variant,)), info.reason
        assert folder_variant(flow_folders[name]).variant == variant
        assert flow_models[name].family == family
    assert folder_variant(flow_folders["flux-dev"]).guidance_embedded
    assert not folder_variant(flow_folders["flux-schnell"]).guidance_embedded


def test_a_folder_without_its_t5_tokenizer_gets_a_sentence(flow_folders, tmp_path):
    import shutil

    from ldm_studio.engine.checkpoints import inspect_model

    broken = tmp_path / "no-t5-tokenizer"
    shutil.copytree(flow_folders["flux-dev"], broken)
    for file in (broken / "tokenizer_2").iterdir():
        file.unlink()
    info = inspect_model(broken)
    assert not info.loadable
    assert "no T5 tokenizer (tokenizer_2/" in info.reason


@pytest.mark.parametrize("name", ["sd3", "sd35"])
def test_sd3_same_pixels_as_the_bare_pipeline_with_cfg(flow_folders, flow_models, name):
    request = request_for(batch_size=2)
    ours = pixels(generate(flow_models[name], request))
    pipe = bare_pipeline(flow_folders[name], "sd3")
    generators = [torch.Generator("cpu").manual_seed(42 + i) for i in range(2)]
    theirs = pipe(
        PROMPT,
        negative_prompt="blurry",
        num_inference_steps=4,
        guidance_scale=4.5,
        height=IMAGE_SIZE,
        width=IMAGE_SIZE,
        num_images_per_prompt=2,
        generator=generators,
        output_type="np",
    ).images
    expected = (theirs * 255).round().astype(np.uint8)
    assert ours.shape == (2, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert np.array_equal(ours, expected)
    assert not np.array_equal(ours[0], ours[1])  # seed + i per image


@pytest.mark.parametrize("name", ["flux-dev", "flux-schnell"])
def test_flux_same_pixels_as_the_bare_pipeline(flow_folders, flow_models, name):
    guidance = 3.5
    request = request_for(guidance=guidance, negative_prompt="", batch_size=2)
    ours = pixels(generate(flow_models[name], request))
    pipe = bare_pipeline(flow_folders[name], "flux")
    generators = [torch.Generator("cpu").manual_seed(42 + i) for i in range(2)]
    theirs = pipe(
        PROMPT,
        num_inference_steps=4,
        guidance_scale=guidance,
        height=IMAGE_SIZE,
        width=IMAGE_SIZE,
        num_images_per_prompt=2,
        generator=generators,
        output_type="np",
    ).images
    assert np.array_equal(ours, (theirs * 255).round().astype(np.uint8))


def test_flux_dev_reads_the_guidance_in_one_pass_and_schnell_ignores_it(flow_models):
    calls = []
    dev = flow_models["flux-dev"]
    handle = dev.pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(kwargs["hidden_states"].shape[0]), with_kwargs=True
    )
    try:
        low = pixels(generate(dev, request_for(guidance=1.5, steps=2)))
    finally:
        handle.remove()
    high = pixels(generate(dev, request_for(guidance=6.0, steps=2)))
    assert calls == [1, 1]  # one pass per step, batch 1: no CFG batch
    assert not np.array_equal(low, high)
    schnell = flow_models["flux-schnell"]
    assert np.array_equal(
        pixels(generate(schnell, request_for(guidance=1.5, steps=2))),
        pixels(generate(schnell, request_for(guidance=6.0, steps=2))),
    )


def test_flux_dev_shift_depends_on_the_resolution(flow_models):
    from ldm_studio.engine.flow_models import calculate_shift
    from ldm_studio.engine.generation.schedule import fresh_schedule

    model = flow_models["flux-dev"]
    small = fresh_schedule(model, request_for(width=32, height=32)).sigmas.clone()
    large = fresh_schedule(model, request_for(width=64, height=64)).sigmas.clone()
    assert small[0] == large[0] == 1.0
    assert float(large[1]) > float(small[1])  # more tokens, more shift: longer at high noise
    config = model.base_scheduler_config
    assert calculate_shift(256, config) == pytest.approx(0.5)
    assert calculate_shift(4096, config) == pytest.approx(1.15)


def test_sizes_must_be_multiples_of_the_patch():
    from ldm_studio.engine.flow_models import check_flow_size

    check_flow_size(1024, 768, 16, "FLUX.1")
    with pytest.raises(ValueError) as raised:
        check_flow_size(1024, 520, 16, "FLUX.1")
    assert str(raised.value) == (
        "FLUX.1 needs width and height in multiples of 16; the height 520 is not (use 512 or 528)"
    )


def test_noise_prediction_samplers_are_refused_in_words(flow_models):
    from ldm_studio.engine.flow_models import samplers_for
    from ldm_studio.engine.samplers import sampler_names

    result = generate(flow_models["sd3"], request_for(sampler="Euler a"))
    assert "does not work with flow-matching models" in result.message
    reasons = samplers_for("flux", sampler_names())
    assert reasons["Euler"] == reasons["Heun"] == reasons["DPM++ 2M"] == reasons["UniPC"] == ""
    assert "noise-prediction sampler" in reasons["DPM++ 2M SDE"]
    assert "noise-prediction sampler" in reasons["Euler a"]
    assert all(reason == "" for reason in samplers_for("sd1", sampler_names()).values())


@pytest.mark.parametrize("name", ["sd3", "flux-dev"])
def test_heun_runs_and_x0_previews_converge_to_the_final_image(flow_models, name):
    model = flow_models[name]
    steps = []
    preview = PreviewSettings(mode=PreviewMode.FULL, every=1)
    result = generate(model, request_for(sampler="Heun", steps=4), steps.append, preview=preview)
    final = pixels(result)[0].astype(np.float64)
    shown = [event.preview.astype(np.float64) for event in steps if isinstance(event, Step)]
    assert len(shown) == 4  # real steps, though Heun calls the network twice per step
    errors = [np.abs(image - final).mean() for image in shown]
    assert errors[-1] < 0.5  # the last x0 is the final latent: the same decode
    assert errors[0] > errors[-1]


def test_fast_preview_projection_is_fitted_for_16_channels(flow_models):
    projection = flow_models["flux-dev"].projection
    assert projection.weights.shape == (16, 3)


def test_img2img_runs_and_follows_the_source(flow_models, tmp_path):
    model = flow_models["sd3"]
    source = tmp_path / "red.png"
    Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (220, 30, 30)).save(source)
    light = pixels(generate(model, request_for(init_image=str(source), strength=0.25)))
    strong = pixels(generate(model, request_for(init_image=str(source), strength=1.0)))
    from ldm_studio.engine.generation.decode import decode, encode
    from ldm_studio.engine.images import open_image, to_tensor

    round_trip = decode(model, encode(model, to_tensor(open_image(str(source)))))
    reference = ((round_trip.clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    assert np.abs(light - reference).mean() < np.abs(strong - reference).mean()


def test_branch_from_a_step_with_the_same_settings_gives_the_same_image(flow_models):
    from ldm_studio.engine.generate import Branch

    model = flow_models["flux-dev"]
    request = request_for(steps=4)
    first = generate(model, request, keep_trajectory=True)
    again = generate(model, request, branch=Branch(first.trajectory, 2, request))
    assert np.array_equal(pixels(first), pixels(again))


def test_metadata_as_forge_writes_it_and_read_back(flow_models):
    from ldm_studio.gallery.metadata import split_record
    from ldm_studio.gallery.parameters import format_parameters, parse_parameters

    request = request_for(guidance=3.5, negative_prompt="", steps=2)
    dev = generate(flow_models["flux-dev"], request)
    name, model_hash, extra = split_record(dev.metadata)
    text = format_parameters(dev.request, model_name=name, model_hash=model_hash, extra=extra)
    assert "Steps: 2, Sampler: Euler, CFG scale: 1, Seed: 42, Size: 32x32" in text
    assert "Distilled CFG Scale: 3.5" in text and "Shift" not in text
    assert parse_parameters(text)["guidance"] == 3.5
    forge = (
        "a cat\nSteps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5, "
        "Seed: 1, Size: 1024x1024, Model hash: 0123456789, Model: flux1-dev"
    )
    assert parse_parameters(forge)["guidance"] == 3.5
    sd3 = generate(flow_models["sd3"], request_for(steps=2))
    name, model_hash, extra = split_record(sd3.metadata)
    text = format_parameters(sd3.request, model_name=name, model_hash=model_hash, extra=extra)
    assert "CFG scale: 4.5" in text and "Shift: 3" in text and "Distilled" not in text


def test_sd3_without_t5_runs_as_diffusers_runs_it(flow_folders, tmp_path):
    import json
    import shutil

    from ldm_studio.engine.checkpoints import inspect_model

    folder = tmp_path / "sd3-no-t5"
    shutil.copytree(flow_folders["sd3"], folder)
    for name in ("text_encoder_3", "tokenizer_3"):
        shutil.rmtree(folder / name)
    index = json.loads((folder / "model_index.json").read_text())
    index.update(text_encoder_3=[None, None], tokenizer_3=[None, None])
    (folder / "model_index.json").write_text(json.dumps(index))
    assert inspect_model(folder).loadable
    model = load_model(folder, device="cpu", dtype="float32")
    ours = pixels(generate(model, request_for(steps=2)))
    pipe = bare_pipeline(folder, "sd3", text_encoder_3=None, tokenizer_3=None)
    theirs = pipe(
        PROMPT,
        negative_prompt="blurry",
        num_inference_steps=2,
        guidance_scale=4.5,
        height=IMAGE_SIZE,
        width=IMAGE_SIZE,
        generator=torch.Generator().manual_seed(42),
        output_type="np",
    ).images
    assert np.array_equal(ours, (theirs * 255).round().astype(np.uint8))
