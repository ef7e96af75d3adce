"""Hires fix through the draft: kept when a job is made, restored from the saved settings, set (or
turned off) by a reuse, kept by a branch."""

from __future__ import annotations

import random

from ldm_studio.app import draft as drafts
from ldm_studio.engine.hires_request import HiresFix
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import metadata_from_chunks

HIRES = HiresFix(1.5, steps=8, strength=0.4, upscaler="Lanczos", sampler="DDIM", guidance=5.0)
A1111 = (
    "a castle\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 9, Size: 512x512, "
    "Denoising strength: 0.55, Hires resize: 1024x1024, Hires upscaler: Latent (antialiased)"
)


def test_a_job_keeps_the_drafts_hires_and_the_saved_settings_bring_it_back():
    draft = drafts.Draft(GenerationRequest(" a castle ", width=512, height=512, hires=HIRES))
    job = drafts.job_request(draft, "model.safetensors", rng=random.Random(1))
    assert job.hires == HIRES and job.prompt == "a castle"
    restored = drafts.restored(job.to_dict(), random_seed=True)
    assert restored.request.hires == HIRES


def test_reuse_sets_hires_from_an_a1111_image_and_turns_it_off_for_a_plain_one():
    metadata = metadata_from_chunks({"parameters": A1111}, (1024, 1024))
    reused = drafts.reused(drafts.Draft(GenerationRequest("old")), metadata, "all")
    assert reused.request.hires == HiresFix(
        resize=(1024, 1024), strength=0.55, upscaler="Latent (antialiased)"
    )
    assert (reused.request.width, reused.request.seed, reused.random_seed) == (512, 9, False)
    plain = metadata_from_chunks({"parameters": "a cat\nSteps: 20, Seed: 1, Size: 512x512"}, (512, 512))
    assert drafts.reused(reused, plain, "all").request.hires is None


def test_a_branch_keeps_the_panels_hires_settings():
    parent = GenerationRequest("a castle", seed=4, width=512, height=512, hires=HIRES)
    child = drafts.branched(GenerationRequest("a castle", seed=1, hires=HiresFix(guidance=3.0)), parent)
    assert (child.seed, child.width, child.hires.guidance) == (4, 512, 3.0)
