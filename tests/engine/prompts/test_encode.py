"""Weighted encoding against diffusers' own encode_prompt and A1111's "Original" emphasis formula."""

from __future__ import annotations

import pytest
import torch

from ldm_studio.engine.prompts import Embedding, PromptError, tokenize_prompt
from ldm_studio.engine.prompts.encode import encode_prompts, pad_to_same_length, sd_encoders, sdxl_encoders
from tests.engine.prompts.tiny_text import clip_text_encoder, clip_tokenizer_77


@pytest.fixture(scope="module")
def sd1(tmp_path_factory):
    tokenizer = clip_tokenizer_77(tmp_path_factory.mktemp("sd1-tokenizer"))
    return tokenizer, clip_text_encoder(tokenizer, layers=3)


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory):
    tokenizer = clip_tokenizer_77(tmp_path_factory.mktemp("sdxl-tokenizer"))
    tokenizer_2 = clip_tokenizer_77(tmp_path_factory.mktemp("sdxl-tokenizer-2"), pad_token="!")
    assert tokenizer_2.pad_token_id == 0
    encoder = clip_text_encoder(tokenizer, hidden=16, layers=3, seed=1)
    encoder_2 = clip_text_encoder(tokenizer_2, hidden=24, layers=3, projection=20, seed=2)
    return tokenizer, encoder, tokenizer_2, encoder_2


def _sd_pipeline(tokenizer, encoder):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=None,
        text_encoder=encoder,
        tokenizer=tokenizer,
        unet=None,
        scheduler=None,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


PROMPT = "a red fox, sitting in the snow"


def test_sd1_plain_prompt_equals_diffusers_exactly(sd1):
    tokenizer, encoder = sd1
    expected, _ = _sd_pipeline(tokenizer, encoder).encode_prompt(PROMPT, "cpu", 1, False)
    encoded = encode_prompts(sd_encoders(tokenizer, encoder), [PROMPT])
    assert encoded.hidden.shape == (1, 77, 16)
    assert torch.equal(encoded.hidden, expected)


def test_sd1_clip_skip_2_is_diffusers_clip_skip_1(sd1):
    # diffusers 0.42's clip_skip path reads text_encoder.text_model, which transformers 5's CLIPTextModel
    # no longer has (AttributeError); this is that path's computation: hidden_states[-(1 + 1)], final norm
    tokenizer, encoder = sd1
    ids = tokenizer(PROMPT, padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        states = encoder(ids, output_hidden_states=True).hidden_states
        expected = encoder.final_layer_norm(states[-(1 + 1)])
    encoded = encode_prompts(sd_encoders(tokenizer, encoder), [PROMPT], clip_skip=2)
    assert torch.equal(encoded.hidden, expected)
    assert not torch.equal(encoded.hidden, encode_prompts(sd_encoders(tokenizer, encoder), [PROMPT]).hidden)


def test_sdxl_plain_prompt_equals_diffusers_exactly(sdxl):
    from diffusers import StableDiffusionXLPipeline

    tokenizer, encoder, tokenizer_2, encoder_2 = sdxl
    pipe = StableDiffusionXLPipeline(
        vae=None,
        text_encoder=encoder,
        text_encoder_2=encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=None,
        scheduler=None,
    )
    expected, _, expected_pooled, _ = pipe.encode_prompt(
        PROMPT, device="cpu", do_classifier_free_guidance=False
    )
    encoded = encode_prompts(sdxl_encoders(*sdxl), [PROMPT])
    assert encoded.hidden.shape == (1, 77, 16 + 24)
    assert torch.equal(encoded.hidden, expected)
    assert torch.equal(encoded.pooled, expected_pooled)


def test_weights_follow_a1111_original_emphasis(sd1):
    tokenizer, encoder = sd1
    encoders = sd_encoders(tokenizer, encoder)
    plain = encode_prompts(encoders, ["a red fox"]).hidden
    weighted = encode_prompts(encoders, ["a (red:1.5) fox"]).hidden
    (chunk,), _ = tokenize_prompt(tokenizer, "a (red:1.5) fox")
    assert chunk.weights[:9] == (1.0, 1.0, 1.5, 1.5, 1.5, 1.0, 1.0, 1.0, 1.0)  # BOS a r e d f o x EOS
    multipliers = torch.ones(1, 77, 1)
    multipliers[0, 2:5] = 1.5
    scaled = plain.double() * multipliers.double()
    expected = scaled * (plain.double().mean() / scaled.mean())
    assert abs(plain.mean().item()) > 0.1  # the rescaling is well defined for this encoder
    torch.testing.assert_close(weighted.double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(weighted.mean(), plain.mean())


def test_weight_one_is_the_plain_word(sd1):
    encoders = sd_encoders(*sd1)
    assert torch.equal(
        encode_prompts(encoders, ["(word:1.0)"]).hidden, encode_prompts(encoders, ["word"]).hidden
    )


def test_long_prompts_are_chunks_encoded_on_their_own_and_concatenated(sd1):
    tokenizer, encoder = sd1
    encoders = sd_encoders(tokenizer, encoder)
    first, second = "x" * 75, "y" * 10
    both = encode_prompts(encoders, [first + " BREAK " + second]).hidden
    assert both.shape == (1, 154, 16)
    assert torch.equal(both[:, :77], encode_prompts(encoders, [first]).hidden)
    assert torch.equal(both[:, 77:], encode_prompts(encoders, [second]).hidden)
    # a token past 77 changes the conditioning
    assert not torch.equal(
        encode_prompts(encoders, ["x" * 80]).hidden[:, 77:], encode_prompts(encoders, [""]).hidden
    )


def test_a_schedule_batch_pads_short_texts_with_empty_chunks(sd1):
    encoders = sd_encoders(*sd1)
    batch = encode_prompts(encoders, ["a", "x" * 80]).hidden
    empty = encode_prompts(encoders, [""]).hidden
    assert batch.shape == (2, 154, 16)
    assert torch.equal(batch[0:1, 77:], empty)


def test_negative_and_positive_are_padded_to_the_same_length(sd1):
    encoders = sd_encoders(*sd1)
    long = encode_prompts(encoders, ["x" * 160]).hidden
    short = encode_prompts(encoders, ["blurry"]).hidden
    empty = encode_prompts(encoders, [""]).hidden
    long_padded, short_padded = pad_to_same_length(long, short, empty)
    assert long_padded is long and short_padded.shape == long.shape
    assert torch.equal(short_padded[:, 77:154], empty) and torch.equal(short_padded[:, 154:], empty)


def test_an_embedding_with_a_words_vectors_encodes_as_that_word(sd1):
    tokenizer, encoder = sd1
    ids = tokenizer("cat", add_special_tokens=False)["input_ids"]
    vectors = encoder.get_input_embeddings().weight[ids].detach().clone()
    embedding = Embedding("qz", {"default": vectors})
    encoders = sd_encoders(tokenizer, encoder)
    with_embedding = encode_prompts(encoders, ["a qz"], embeddings=[embedding]).hidden
    assert torch.allclose(with_embedding, encode_prompts(encoders, ["a cat"]).hidden, atol=1e-6)
    assert not torch.allclose(with_embedding, encode_prompts(encoders, ["a qz"]).hidden, atol=1e-3)
    # the hook is gone afterwards
    assert torch.equal(encode_prompts(encoders, ["a qz"]).hidden, encode_prompts(encoders, ["a qz"]).hidden)
    assert not encoder.get_input_embeddings()._forward_hooks


def test_sdxl_embeddings_take_each_encoders_vectors(sdxl):
    tokenizer, _, tokenizer_2, encoder_2 = sdxl
    embedding = Embedding("qz", {"clip_l": torch.zeros(2, 16), "clip_g": torch.zeros(2, 24)})
    encoded = encode_prompts(sdxl_encoders(*sdxl), ["a qz"], embeddings=[embedding])
    chunks, _ = tokenize_prompt(tokenizer_2, "a qz", [embedding])
    assert encoded.hidden.shape == (1, 77, 40) and chunks[0].fixes[0].offset == 2
    wrong = Embedding("qz", {"default": torch.zeros(2, 768)})
    with pytest.raises(PromptError, match="another model family"):
        encode_prompts(sdxl_encoders(*sdxl), ["a qz"], embeddings=[wrong])


def test_clip_skip_outside_the_encoder_is_refused(sd1):
    for clip_skip in (0, 4):
        with pytest.raises(PromptError):
            encode_prompts(sd_encoders(*sd1), ["a"], clip_skip=clip_skip)
