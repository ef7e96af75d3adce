"""The shipped T5 tokenizer reads prompts as T5 does, offline."""

import json

from ldm_studio.engine.t5_tokenizer import T5_VOCABULARY_SIZE, load_t5_tokenizer, shipped_t5_tokenizer_folder


def test_the_shipped_t5_tokenizer_gives_t5s_own_ids():
    tokenizer = load_t5_tokenizer()
    assert len(tokenizer) == T5_VOCABULARY_SIZE
    assert tokenizer("a photo of a cat").input_ids == [3, 9, 1202, 13, 3, 9, 1712, 1]  # T5's ids, </s> last
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert tokenizer.convert_tokens_to_ids("<extra_id_0>") == 32099


def test_prompts_pad_to_the_sequence_length_the_pipelines_ask_for():
    tokenizer = load_t5_tokenizer(max_length=256)
    ids = tokenizer("a red car", padding="max_length", max_length=256, truncation=True).input_ids
    assert len(ids) == 256 and ids[-1] == 0 and 1 in ids
    long_ids = tokenizer("cat " * 600, padding="max_length", max_length=256, truncation=True).input_ids
    assert len(long_ids) == 256 and long_ids[-1] == 1  # cut to the length, still ended by </s>


def test_the_vocabulary_file_is_the_documented_one():
    folder = shipped_t5_tokenizer_folder()
    table = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = table["model"]["vocab"]
    assert table["model"]["type"] == "Unigram" and len(vocab) == T5_VOCABULARY_SIZE
    assert [piece for piece, _score in vocab[:4]] == ["<pad>", "</s>", "<unk>", "▁"]
    assert (folder / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
