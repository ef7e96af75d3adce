"""Chunking as A1111's tokenize_line: 75-token chunks, the comma rule, BREAK, embeddings, the counter."""

from __future__ import annotations

import pytest
import torch

from ldm_studio.cli.prompt import bundled_clip_tokenizer
from ldm_studio.engine.prompts import Embedding, PromptError, count_tokens, tokenize_prompt
from tests.engine.prompts.tiny_text import clip_tokenizer_77


@pytest.fixture(scope="module")
def clip():
    return bundled_clip_tokenizer()


@pytest.fixture(scope="module")
def chars(tmp_path_factory):
    return clip_tokenizer_77(tmp_path_factory.mktemp("tokenizer"))


def test_a_short_prompt_is_one_padded_chunk_like_the_tokenizer_makes_it(clip):
    chunks, count = tokenize_prompt(clip, "a red fox in the snow")
    expected = clip("a red fox in the snow", padding="max_length", max_length=77)["input_ids"]
    assert len(chunks) == 1 and list(chunks[0].tokens) == expected
    assert count == chunks[0].used == expected.index(clip.eos_token_id) - 1 == 6


def test_weights_follow_their_tokens(clip):
    (chunk,), _ = tokenize_prompt(clip, "a (red:1.5) [fox]")
    assert chunk.weights[:5] == (1.0, 1.0, 1.5, 1 / 1.1, 1.0)
    assert set(chunk.weights[5:]) == {1.0}


def test_long_prompts_split_into_75_token_chunks_at_the_last_comma(chars):
    # character-level tokenizer: "x" is one token; 70 x's, a comma, then 10 more x's in one word
    prompt = "x" * 70 + ", " + "y" * 10
    chunks, count = tokenize_prompt(chars, prompt)
    assert [chunk.used for chunk in chunks] == [71, 10]  # the comma stays, the word after it moves
    assert all(len(chunk.tokens) == 77 for chunk in chunks)
    assert count == 75 + 10


def test_a_comma_further_back_than_20_tokens_does_not_move_text(chars):
    prompt = "x" * 50 + ", " + "y" * 40
    chunks, _ = tokenize_prompt(chars, prompt)
    assert [chunk.used for chunk in chunks] == [75, 16]


def test_break_starts_a_new_chunk_and_counts_a_full_chunk(chars):
    chunks, count = tokenize_prompt(chars, "abc BREAK de")
    assert [chunk.used for chunk in chunks] == [3, 2]
    assert count == 75 + 2
    assert str(count_tokens(chars, "abc BREAK de")) == "77/150"


def test_counter_shows_the_chunk_multiple_and_the_longest_step(clip):
    assert str(count_tokens(clip, "a cat")) == "2/75"
    assert str(count_tokens(clip, "")) == "0/75"
    long_words = " ".join(["cat"] * 80)
    assert str(count_tokens(clip, long_words)) == "80/150"
    assert str(count_tokens(clip, "[cat:a b c d e:5] <lora:x:1>")) == "5/75"
    # half-typed: counted, never raised ("[b|c" is left as text, the bad weight read as 1.0)
    assert str(count_tokens(clip, "(a:1.2.3) [b|c")) == "4/75"


def _embedding(name: str, rows: int, width: int = 16) -> Embedding:
    return Embedding(name, {"default": torch.randn(rows, width)})


def test_an_embedding_name_takes_its_vector_count(chars):
    emb = _embedding("qz", 4)
    (chunk,), count = tokenize_prompt(chars, "a qz b", [emb])
    assert count == 1 + 4 + 1
    assert chunk.fixes[0].offset == 2 and chunk.fixes[0].embedding is emb
    assert chunk.tokens[2:6] == (0, 0, 0, 0)
    assert str(count_tokens(chars, "a qz b", [emb])) == "6/75"


def test_the_longest_matching_embedding_name_wins(chars):
    short, long = _embedding("qz", 2), _embedding("qzq", 3)
    (chunk,), count = tokenize_prompt(chars, "qzq", [short, long])
    assert chunk.fixes[0].embedding is long and count == 3


def test_an_embedding_is_never_split_across_chunks(chars):
    emb = _embedding("qz", 8)
    chunks, _ = tokenize_prompt(chars, "x" * 70 + "qz", [emb])
    assert [chunk.used for chunk in chunks] == [70, 8]
    assert chunks[1].fixes[0].offset == 1


def test_the_comma_rule_moves_an_embedding_with_its_placeholders(chars):
    emb = _embedding("qz", 3)
    chunks, _ = tokenize_prompt(chars, "x" * 60 + ", qz " + "y" * 20, [emb])
    assert [chunk.used for chunk in chunks] == [61, 23]
    assert chunks[0].fixes == ()
    assert chunks[1].fixes[0].offset == 1 and chunks[1].tokens[1:4] == (0, 0, 0)


def test_an_embedding_longer_than_a_chunk_is_refused(chars):
    with pytest.raises(PromptError):
        tokenize_prompt(chars, "qz", [_embedding("qz", 80)])
