"""The stages' own contracts: per-step conditioning, the denoiser adapters, the sampler step rule."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from ldm_studio.engine.events import Finished, Step
from ldm_studio.engine.generate import Branch, generate
from ldm_studio.engine.generation.conditioning import Conditioning, PromptSchedule, encode_text
from ldm_studio.engine.generation.denoiser import UNetDenoiser, sdxl_time_ids
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.samplers import SAMPLERS, make_scheduler, step_options

STAGES = Path(__file__).parents[2] / "ldm_studio" / "engine"


def pixels(result) -> np.ndarray:
    assert isinstance(result, Finished), result
    return np.stack([np.asarray(image, dtype=np.int16) for image in result.images])


def test_a_prompt_schedule_hands_out_each_part_until_its_step():
    a, b, c = (Conditioning(torch.full((1, 2, 3), float(n)), None) for n in range(3))
    schedule = PromptSchedule(((2, a), (5, b), (0, c)))
    assert [schedule.at(step) for step in range(7)] == [a, a, b, b, b, c, c]
    assert PromptSchedule.constant(a).at(99) is a and schedule.first is a


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2M", "Heun"])
def test_a_prompt_that_changes_at_a_step_equals_a_branch_with_the_new_prompt(tiny_model, sampler):
    """The loop reads the text of every step from the schedule: switching at step 3 is exactly a
    branch from step 3 with the second prompt (same sampler state, same random generators)."""
    request = GenerationRequest("a fox", negative_prompt="blurry", seed=9, steps=6, sampler=sampler)
    first = encode_text(tiny_model, "a fox", "blurry", guided=True)
    second = encode_text(tiny_model, "a whale", "blurry", guided=True)
    events = []
    edited = generate(
        tiny_model, request, events.append, conditioning=PromptSchedule(((3, first), (0, second)))
    )
    assert [event.index for event in events if isinstance(event, Step)] == [1, 2, 3, 4, 5, 6]
    original = generate(tiny_model, request, keep_trajectory=True)
    branch = Branch(original.trajectory, 3, original.request)
    branched = generate(tiny_model, original.request.replace(prompt="a whale"), branch=branch)
    assert np.array_equal(pixels(edited), pixels(branched))
    assert not np.array_equal(pixels(edited), pixels(original))


def test_sdxl_time_ids_are_the_pipeline_own(tmp_path):
    from tests.engine.checkpoint_factory import tiny

    pipe = tiny("sdxl").pipe
    for size in ((32, 32), (48, 32), (1024, 768)):
        theirs = pipe._get_add_time_ids(
            size,
            (0, 0),
            size,
            dtype=torch.float32,
            text_encoder_projection_dim=pipe.text_encoder_2.config.projection_dim,
        )
        assert torch.equal(sdxl_time_ids(size, torch.float32), theirs)
    adapter = UNetDenoiser(pipe.unet, torch.device("cpu"))
    assert adapter.wants_pooled_text and not adapter.takes_masked_image


def test_the_unet_adapter_knows_plain_and_inpainting_unets(tiny_model, tmp_path):
    from ldm_studio.engine.loader import load_model
    from tests.tiny_models import build_tiny_sd

    plain = tiny_model.denoiser
    assert not plain.wants_pooled_text and not plain.takes_masked_image
    assert plain.blocks()[0] is tiny_model.pipe.unet.down_blocks[0]
    inpainting = load_model(build_tiny_sd(tmp_path / "inpaint", inpainting=True), device="cpu").denoiser
    assert inpainting.takes_masked_image


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_the_step_options_rule_matches_what_each_scheduler_accepts(tiny_model, sampler):
    """samplers.py says which schedulers take ``generator`` / ``eta``; diffusers' signatures agree."""
    scheduler = make_scheduler(sampler, tiny_model.base_scheduler_config)
    accepted = set(inspect.signature(scheduler.step).parameters)
    options = step_options(sampler, [torch.Generator()])
    assert ("generator" in options) == ("generator" in accepted)
    assert ("eta" in options) == ("eta" in accepted)


@pytest.mark.parametrize(
    "module", sorted(path.name for path in (STAGES / "generation").glob("*.py")) + ["../generate.py"]
)
def test_the_stages_reach_no_network_or_pipeline_helper_directly(module):
    """Only the denoiser adapter knows the network; no private pipeline helpers, no signature tricks."""
    text = (STAGES / "generation" / module).read_text(encoding="utf-8")
    assert "_get_add_time_ids" not in text and "prepare_extra_step_kwargs" not in text
    assert "import inspect" not in text and "inspect.signature" not in text
    if module != "denoiser.py":
        assert "pipe.unet" not in text and ".unet(" not in text
    assert len(text.splitlines()) <= 400
