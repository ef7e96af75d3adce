"""The T5 v1.1 tokenizer that SD 3.x and FLUX.1 read prompts with, shipped with the app.

No checkpoint file carries it (a diffusers folder does, as ``tokenizer_2`` / ``tokenizer_3``), and it
is never fetched from a hub: ``resources/tokenizers/t5`` holds it (see the README there for its
source and licence)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ldm_studio.paths import resource

T5_VOCABULARY_SIZE = 32100  # 32,000 pieces + 100 <extra_id_N> sentinels


def shipped_t5_tokenizer_folder() -> Path:
    return resource("tokenizers", "t5")


def load_t5_tokenizer(folder: Path | None = None, max_length: int = 512) -> Any:
    """A ``T5TokenizerFast`` from ``folder`` (a diffusers folder's tokenizer_2, say) or the shipped one."""
    from transformers import T5TokenizerFast

    source = folder if folder is not None else shipped_t5_tokenizer_folder()
    return T5TokenizerFast.from_pretrained(source, local_files_only=True, model_max_length=max_length)
