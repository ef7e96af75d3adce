"""The prompt toolkit inside generation: A1111 syntax, LoRA tags, embeddings and clip skip change the
image exactly as they should, and a LoRA-free generation after one is bit-for-bit the plain one.

The tiny model's tokenizer reads single characters and holds 16 tokens: a chunk is 14 characters.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ldm_studio.engine.events import Failed, Finished
from ldm_studio.engine.generate import Branch, generate
from ldm_studio.engine.networks import NETWORK_FILES_KEY, NetworkLibrary
from ldm_studio.engine.request import GenerationRequest
from tests.engine.lora_factory import kohya_lora, load_own_copy, save_safetensors


@pytest.fixture
def model(tiny_sd_folder):
    return load_own_copy(tiny_sd_folder)


@pytest.fixture
def library(tmp_path):
    (tmp_path / "loras").mkdir()
    (tmp_path / "embeddings").mkdir()
    return NetworkLibrary([tmp_path / "loras"], [tmp_path / "embeddings"])


def run(model, prompt: str, library=None, **changes) -> Finished:
    values = dict(seed=7, steps=6, sampler="Euler", guidance=5.0, width=32, height=32)
    values.update(changes)
    result = generate(model, GenerationRequest(prompt, **values), networks=library)
    assert isinstance(result, Finished), getattr(result, "message", result)
    return result


def pixels(result: Finished) -> np.ndarray:
    return np.asarray(result.images[0], dtype=np.int16)


def differ(a: Finished, b: Finished) -> float:
    return float(np.abs(pixels(a) - pixels(b)).mean())


def test_weight_one_is_the_plain_word_and_emphasis_changes_the_image(model):
    plain = run(model, "a red cat")
    assert np.array_equal(pixels(run(model, "a red (cat:1.0)")), pixels(plain))
    assert differ(run(model, "a red (cat:1.6)"), plain) > 0.5
    assert differ(run(model, "a red [cat]"), plain) > 0.1


def test_a_token_past_the_first_chunk_changes_the_image(model):
    """The old engine cut the prompt at the encoder's length; now the rest is a second chunk."""
    head = "a" * 14
    assert differ(run(model, head + "b"), run(model, head + "c")) > 0.1


def test_break_starts_a_new_chunk(model):
    assert differ(run(model, "red cat BREAK blue"), run(model, "red cat blue")) > 0.1


def test_prompt_editing_switches_at_a1111s_step(model):
    """``[cat:dog:3]``: A1111 keeps "cat" while its 0-based step is <= 3, so four steps of cat."""
    edited = run(model, "[cat:dog:3]")
    cat = generate(
        model,
        GenerationRequest("cat", seed=7, steps=6, sampler="Euler", guidance=5.0, width=32, height=32),
        keep_trajectory=True,
    )
    dog_from_4 = generate(
        model,
        cat.request.replace(prompt="dog"),
        branch=Branch(cat.trajectory, 4, cat.request),
    )
    dog_from_3 = generate(
        model, cat.request.replace(prompt="dog"), branch=Branch(cat.trajectory, 3, cat.request)
    )
    assert np.array_equal(pixels(edited), pixels(dog_from_4))
    assert not np.array_equal(pixels(edited), pixels(dog_from_3))


def test_alternation_differs_from_either_prompt(model):
    both = run(model, "[cat|dog]")
    assert differ(both, run(model, "cat")) > 0.1 and differ(both, run(model, "dog")) > 0.1


def test_and_is_refused_in_a_sentence(model):
    result = generate(model, GenerationRequest("a cat AND a dog", seed=1, steps=2, width=32, height=32))
    assert isinstance(result, Failed)
    assert "AND" in result.message and "composable" in result.message


def test_clip_skip_two_reads_the_penultimate_layer(model):
    assert differ(run(model, "a red cat", clip_skip=2), run(model, "a red cat")) > 0.1
    result = generate(model, GenerationRequest("cat", seed=1, steps=2, clip_skip=5, width=32, height=32))
    assert isinstance(result, Failed) and "Clip skip 5" in result.message


def write_lora(model, folder, name="fox_style", seed=0):
    return save_safetensors(
        kohya_lora(model.pipe.unet, model.pipe.text_encoder, seed=seed), folder / f"{name}.safetensors"
    )


def test_lora_tag_weight_zero_is_plain_and_removing_it_restores_the_pixels(model, library):
    write_lora(model, library.lora_folders[0])
    plain = run(model, "a red cat")
    assert np.array_equal(pixels(run(model, "a red cat <lora:fox_style:0>", library)), pixels(plain))
    small = run(model, "a red cat <lora:fox_style:0.3>", library)
    large = run(model, "a red cat <lora:fox_style:1>", library)
    assert 0 < differ(small, plain) < differ(large, plain)
    # the tag is not text: the same LoRA with the tag elsewhere gives the same image
    assert np.array_equal(pixels(run(model, "<lora:fox_style:1> a red cat", library)), pixels(large))
    assert np.array_equal(pixels(run(model, "a red cat", library)), pixels(plain))
    record = large.metadata["loras"][0]
    assert (record["name"], record["weight"], len(record["hash"])) == ("fox_style", 1.0, 12)


def test_separate_text_encoder_and_unet_weights(model, library):
    write_lora(model, library.lora_folders[0])
    both = run(model, "cat <lora:fox_style:1>", library)
    unet_only = run(model, "cat <lora:fox_style:0:1>", library)
    assert differ(both, unet_only) > 0.1
    assert unet_only.metadata["loras"][0]["unet_weight"] == 1.0


def test_a_lora_named_nowhere_fails_in_words_and_nan_weights_are_refused(model, library):
    missing = generate(model, GenerationRequest("cat <lora:nowhere:1>", seed=1, steps=2), networks=library)
    assert isinstance(missing, Failed) and "No LoRA named 'nowhere'" in missing.message
    write_lora(model, library.lora_folders[0])
    nan = generate(model, GenerationRequest("cat <lora:fox_style:nan>", seed=1, steps=2), networks=library)
    assert isinstance(nan, Failed) and "fox_style" in nan.message


def test_a_lora_file_given_by_path_works_without_a_library_folder(model, library, tmp_path):
    path = write_lora(model, tmp_path / "elsewhere", name="owl")
    request_extras = {NETWORK_FILES_KEY: [str(path)]}
    result = run(model, "cat <lora:owl:1>", library, extras=request_extras)
    assert differ(result, run(model, "cat")) > 0.1


def test_an_embedding_named_in_the_prompt_is_used_and_recorded(model, library):
    from safetensors.torch import save_file

    width = model.pipe.text_encoder.get_input_embeddings().weight.shape[1]
    vectors = torch.randn(2, width, generator=torch.Generator().manual_seed(0))
    save_file({"emb_params": vectors}, str(library.embedding_folders[0] / "fuzzy.safetensors"))
    used = run(model, "a fuzzy cat", library)
    assert differ(used, run(model, "a fuzzy cat")) > 0.1  # without the library: plain letters
    record = used.metadata["embeddings"][0]
    assert record["name"] == "fuzzy" and len(record["hash"]) == 12
    # a word that merely contains the name does not trigger it
    assert "embeddings" not in run(model, "a fuzzycat", library).metadata


def test_an_embedding_for_another_family_is_skipped_as_a1111_does_and_said_in_the_record(model, library):
    from safetensors.torch import save_file

    save_file({"emb_params": torch.zeros(1, 768)}, str(library.embedding_folders[0] / "wide.safetensors"))
    skipped = run(model, "a wide cat", library)
    assert np.array_equal(pixels(skipped), pixels(run(model, "a wide cat")))  # plain words
    assert "embeddings" not in skipped.metadata
    assert any("wide" in notice and "768" in notice for notice in skipped.metadata["notices"])


def test_a_lora_is_found_by_its_trainer_output_name(model, library):
    tensors = kohya_lora(model.pipe.unet, model.pipe.text_encoder)
    save_safetensors(tensors, library.lora_folders[0] / "file-v2.safetensors", {"ss_output_name": "ink"})
    assert differ(run(model, "cat <lora:ink:1>", library), run(model, "cat")) > 0.1
