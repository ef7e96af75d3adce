"""A1111 prompt syntax on SD 3 and FLUX.1: emphasis as Forge reads it, prompt editing, alternation, BREAK.

The expected numbers are built from the pipeline's own encoders on the plain text, the weights put on
by hand at the tokens the weighted words make, so a wrong token position, weight or mean fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ldm_studio.engine.errors import GenerationError
from ldm_studio.engine.generate import generate
from ldm_studio.engine.generation.flow_conditioning import condition_flow, flow_schedule
from ldm_studio.engine.generation.flow_text import (
    FLUX_MAX_T5_TOKENS,
    SD3_MAX_T5_TOKENS,
    TextPieces,
    flux_text,
    sd3_text,
)
from ldm_studio.engine.loader import load_model
from ldm_studio.engine.request import GenerationRequest
from tests.flow_models import IMAGE_SIZE, build_tiny_flux, build_tiny_sd3


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow-prompts")
    return {
        "flux": load_model(build_tiny_flux(root / "flux"), device="cpu", dtype="float32"),
        "sd3": load_model(build_tiny_sd3(root / "sd3"), device="cpu", dtype="float32"),
    }


def request(prompt: str, **changes) -> GenerationRequest:
    base = dict(
        prompt=prompt, negative_prompt="blurry", seed=3, steps=4, guidance=4.5,
        width=IMAGE_SIZE, height=IMAGE_SIZE, sampler="Euler",
    )  # fmt: skip
    return GenerationRequest(**{**base, **changes})


def by_hand(hidden: torch.Tensor, weights: list[float]) -> torch.Tensor:
    w = torch.tensor(weights, dtype=torch.float64).reshape(1, -1, 1)
    weighted = hidden.double() * w
    return (weighted * (hidden.double().mean() / weighted.double().mean())).to(hidden.dtype)


def word_positions(tokenizer, text: str, word: str, offset: int = 0) -> list[int]:
    """Where ``word``'s tokens sit in ``text``'s tokens (``offset``: a leading start token)."""
    ids = tokenizer(text, add_special_tokens=False).input_ids
    before = tokenizer(text[: text.index(word)], add_special_tokens=False).input_ids
    count = len(tokenizer(word, add_special_tokens=False).input_ids)
    assert ids[: len(before)] == before  # the runs tokenize as the whole text does
    return list(range(offset + len(before), offset + len(before) + count))


def test_reading_pieces():
    pieces = TextPieces.read("a (red:1.5) apple BREAK on [wood]")
    assert len(pieces.chunks) == 2 and pieces.emphasised
    assert pieces.plain == "a red apple on wood"
    assert not TextPieces.read("a (red:1) apple").emphasised  # weight 1 is no emphasis
    assert TextPieces.read(r"a \(red\) apple").plain == "a (red) apple"


def test_flux_emphasis_weights_the_t5_tokens_and_keeps_the_mean(models):
    pipe = models["flux"].pipe
    plain, weighted = "a red apple on a table", "a (red:1.5) apple on a [table]"
    embeds, pooled = flux_text(pipe, weighted, torch.device("cpu"))
    base = pipe._get_t5_prompt_embeds(prompt=plain, max_sequence_length=FLUX_MAX_T5_TOKENS)
    weights = [1.0] * FLUX_MAX_T5_TOKENS
    for position in word_positions(pipe.tokenizer_2, plain, "red"):
        weights[position] = 1.5
    for position in word_positions(pipe.tokenizer_2, plain, "table"):
        weights[position] = 1 / 1.1
    assert torch.allclose(embeds, by_hand(base, weights), atol=1e-6)
    assert not torch.allclose(embeds, base, atol=1e-3)
    assert torch.equal(pooled, pipe._get_clip_prompt_embeds(prompt=plain, num_images_per_prompt=1))
    assert embeds.double().mean().item() == pytest.approx(base.double().mean().item(), rel=1e-5)


def test_a_plain_prompt_is_the_pipelines_own_encoding(models):
    for family, reader in (("flux", flux_text), ("sd3", sd3_text)):
        pipe = models[family].pipe
        embeds, pooled = reader(pipe, "a (red:1.0) apple", torch.device("cpu"))
        if family == "flux":
            theirs, their_pooled, _ = pipe.encode_prompt("a red apple", None, max_sequence_length=512)
        else:
            theirs, _, their_pooled, _ = pipe.encode_prompt(
                "a red apple", None, None, do_classifier_free_guidance=False, max_sequence_length=256
            )
        assert torch.equal(embeds, theirs) and torch.equal(pooled, their_pooled)


def test_sd3_emphasis_weights_both_clips_and_t5(models):
    pipe = models["sd3"].pipe
    plain, weighted = "a red apple", "a (red:1.4) apple"
    embeds, pooled = sd3_text(pipe, weighted, torch.device("cpu"))
    clip_parts = []
    for encoder, tokenizer in ((pipe.text_encoder, pipe.tokenizer), (pipe.text_encoder_2, pipe.tokenizer_2)):
        hidden, _ = pipe._get_clip_prompt_embeds(
            prompt=plain, clip_model_index=0 if encoder is pipe.text_encoder else 1
        )
        weights = [1.0] * hidden.shape[1]
        for position in word_positions(tokenizer, plain, "red", offset=1):
            weights[position] = 1.4
        clip_parts.append(by_hand(hidden, weights))
    t5 = pipe._get_t5_prompt_embeds(prompt=plain, max_sequence_length=SD3_MAX_T5_TOKENS)
    t5_weights = [1.0] * SD3_MAX_T5_TOKENS
    for position in word_positions(pipe.tokenizer_3, plain, "red"):
        t5_weights[position] = 1.4
    clip = torch.cat(clip_parts, dim=-1)
    clip = torch.nn.functional.pad(clip, (0, t5.shape[-1] - clip.shape[-1]))
    expected = torch.cat([clip, by_hand(t5, t5_weights)], dim=-2)
    assert torch.allclose(embeds, expected, atol=1e-6)
    _, _, their_pooled, _ = pipe.encode_prompt(plain, None, None, do_classifier_free_guidance=False)
    assert torch.allclose(pooled, their_pooled, atol=1e-6)  # emphasis never changes the pooled text


def test_flux_break_starts_a_new_t5_chunk_and_sd3_says_no(models):
    embeds, _ = flux_text(models["flux"].pipe, "a red apple BREAK a table", torch.device("cpu"))
    assert embeds.shape[1] == 2 * FLUX_MAX_T5_TOKENS
    first, _ = flux_text(models["flux"].pipe, "(a red apple:1.0001)", torch.device("cpu"))
    assert torch.allclose(embeds[:, :FLUX_MAX_T5_TOKENS], first, atol=1e-3)
    with pytest.raises(GenerationError, match="BREAK"):
        sd3_text(models["sd3"].pipe, "a BREAK b", torch.device("cpu"))


@pytest.mark.parametrize("family", ["flux", "sd3"])
def test_prompt_editing_switches_the_text_at_the_step(models, family):
    model = models[family]
    guided = family == "sd3"
    schedule = condition_flow(model, request("a [cat:dog:2] on a table"), guided)
    cat = condition_flow(model, request("a cat on a table"), guided).first.embeds
    dog = condition_flow(model, request("a dog on a table"), guided).first.embeds
    assert not torch.equal(cat, dog)
    # A1111 keeps an entry while the (0-based) step <= its end: cat for steps 0-2, dog after
    assert [torch.equal(schedule.at(step).embeds, cat) for step in range(4)] == [True, True, True, False]
    assert torch.equal(schedule.at(3).embeds, dog)
    alternating = condition_flow(model, request("a [cat|dog] on a table"), guided)
    # A1111 ends "cat" at step 1 and "dog" at 2 (1-based), read with the same <=: cat, cat, dog, cat
    assert [torch.equal(alternating.at(step).embeds, cat) for step in range(4)] == [True, True, False, True]


def test_an_edited_prompt_makes_an_image_between_its_two_texts(models):
    model = models["flux"]
    images = {
        prompt: np.asarray(generate(model, request(prompt, steps=3)).images[0], dtype=np.int16)
        for prompt in ("a cat", "a dog", "a [cat:dog:1]")
    }
    assert not np.array_equal(images["a cat"], images["a dog"])
    # A1111 switches after step 1 (1-based) read with <=: cat for two steps, dog for the last
    assert not np.array_equal(images["a [cat:dog:1]"], images["a cat"])
    assert not np.array_equal(images["a [cat:dog:1]"], images["a dog"])


def test_and_is_still_refused_in_words(models):
    with pytest.raises(GenerationError, match="AND"):
        condition_flow(models["flux"], request("a cat AND a dog"), False)


def test_and_in_a_negative_prompt_is_text_as_in_a1111(models):
    model = models["sd3"]  # SD 3 reads its negative prompt (CFG)
    schedule = condition_flow(model, request("a cat", negative_prompt="blurry AND dark"), True)
    plain = flow_schedule(model, request("a cat", negative_prompt="blurry AND dark"), True)
    assert torch.equal(schedule.parts[0][1].embeds, plain.parts[0][1].embeds)
    other = condition_flow(model, request("a cat", negative_prompt="blurry dark"), True)
    assert not torch.equal(schedule.parts[0][1].embeds[:1], other.parts[0][1].embeds[:1])
