"""Before an SD 3 / FLUX model loads: every part counted alike for .safetensors and .gguf files,
and a model the machine cannot hold refused with one sentence unless the user says to try anyway."""

from __future__ import annotations

import shutil

import pytest

from ldm_studio.engine import memory_check
from ldm_studio.engine.checkpoints import inspect_model, set_model_settings
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.loader import load_model
from tests.engine.test_flow_gguf import write_gguf
from tests.flow_layouts import tiny_flux_set, write_all_in_one

PARTS = {"clip_l": "clip_l", "t5xxl": "t5xxl_fp16", "ae": "ae"}


@pytest.fixture(scope="module")
def flux(tmp_path_factory):
    root = tmp_path_factory.mktemp("flux-memory")
    folder, pipe, bfl = tiny_flux_set(root)
    gguf = write_gguf(pipe.transformer, bfl.parent / "flux1-dev-Q8_0.gguf", "Q8_0")
    comfy = write_all_in_one(pipe, root / "comfy" / "flux1-dev-all-in-one.safetensors")
    counts = {
        "transformer": pipe.transformer.num_parameters(),
        "clip_l": pipe.text_encoder.num_parameters(),
        "t5xxl": pipe.text_encoder_2.num_parameters(),
        "vae": pipe.vae.num_parameters(),
    }
    return {"folder": folder, "bfl": bfl, "gguf": gguf, "comfy": comfy, "counts": counts}


def test_every_layout_counts_the_same_parts(flux):
    counts = flux["counts"]
    for layout in ("bfl", "gguf", "comfy"):
        parameters = inspect_model(flux[layout]).parameters
        assert set(parameters) == set(counts), layout
        for part, count in counts.items():  # the converted files may drop a buffer or two
            assert abs(parameters[part] - count) <= 0.01 * count, (layout, part)


def test_a_model_too_big_is_refused_with_the_ways_that_fit(flux, monkeypatch):
    monkeypatch.setattr(memory_check, "available_memory", lambda device, offload=False: 1000)
    options = {"parts": {"tokenizers": flux["folder"]}}
    for layout in ("bfl", "folder"):
        with pytest.raises(ModelLoadError) as refused:
            load_model(flux[layout], device="cpu", dtype="float32", file_options=options)
        assert "needs about" in str(refused.value) and "0.0 GB free" in str(refused.value)
        assert "Load even if memory looks short" in str(refused.value)
    alone = flux["bfl"].parent.parent / "alone" / "flux1-dev.safetensors"  # its parts given as --part
    alone.parent.mkdir(exist_ok=True)
    shutil.copy(flux["bfl"], alone)
    given = {name: flux["bfl"].parent / f"{file}.safetensors" for name, file in PARTS.items()}
    with pytest.raises(ModelLoadError, match="needs about"):
        load_model(
            alone, device="cpu", dtype="float32", file_options={"parts": {**options["parts"], **given}}
        )
    loaded = load_model(
        flux["bfl"], device="cpu", dtype="float32", file_options={**options, "skip_memory_check": True}
    )
    assert loaded.family == "flux"
    set_model_settings(flux["gguf"], skip_memory_check=True)  # remembered, as the model settings keep it
    assert load_model(flux["gguf"], device="cpu", dtype="float32", file_options=options).family == "flux"


def test_free_memory_is_read_from_the_machine():
    import torch

    assert memory_check.available_memory(torch.device("cpu")) > 100_000_000


def test_the_sentence_for_flux_dev_on_a_24_gb_machine():
    from ldm_studio.engine.flow_models import memory_sentence

    flux = {"transformer": 11_900_000_000, "t5xxl": 4_760_000_000, "clip_l": 123_000_000, "vae": 84_000_000}
    sentence = memory_sentence(flux, "bfloat16", 24_000_000_000)
    assert sentence.startswith(
        "This model needs about 40.5 GB in bfloat16 and this machine has 24.0 GB free; "
    )
    assert "what fits: an fp8 file of it (20.2 GB), a GGUF Q4_0 transformer (20.0 GB)." in sentence
    assert "Q8_0" not in sentence and "CPU offload" not in sentence
    on_cuda = memory_sentence(flux, "bfloat16", 12_000_000_000, device="cuda")
    assert "what fits: CPU offload in the model's settings" in on_cuda and "GGUF" not in on_cuda
    sd3 = memory_sentence(flux, "bfloat16", 12_000_000_000, family="sd3")
    assert "nothing smaller of it fits" in sd3
    assert memory_sentence(flux, "fp8", 24_000_000_000) == ""
