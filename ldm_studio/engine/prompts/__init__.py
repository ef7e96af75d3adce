"""A1111 prompt syntax as a pure toolkit: parsing, schedules, chunking and weighted encoding.

Text-only parts (everything but :mod:`.encode`) import neither torch nor a model: the prompt box can
count tokens and highlight emphasis on the GUI thread.
"""

from ldm_studio.engine.prompts.attention import (
    EmphasisSpan,
    WeightedText,
    emphasis_spans,
    parse_prompt_attention,
    parse_prompt_attention_lenient,
)
from ldm_studio.engine.prompts.chunks import (
    Embedding,
    EmbeddingFix,
    PromptChunk,
    PromptTokenizer,
    TokenCount,
    count_tokens,
    tokenize_prompt,
)
from ldm_studio.engine.prompts.composable import (
    ComposablePart,
    refuse_composable,
    split_composable,
    unsupported_composable_message,
)
from ldm_studio.engine.prompts.errors import PromptError, UnsupportedPrompt
from ldm_studio.engine.prompts.extra_networks import ExtraNetworkTag, extract_extra_networks
from ldm_studio.engine.prompts.plan import ParsedPrompt, PromptPart, parse_prompt
from ldm_studio.engine.prompts.schedule import (
    ScheduledPrompt,
    prompt_at_step,
    prompt_schedule,
    prompt_schedules,
)

__all__ = [
    "ComposablePart",
    "Embedding",
    "EmbeddingFix",
    "EmphasisSpan",
    "ExtraNetworkTag",
    "ParsedPrompt",
    "PromptChunk",
    "PromptError",
    "PromptPart",
    "PromptTokenizer",
    "ScheduledPrompt",
    "TokenCount",
    "UnsupportedPrompt",
    "WeightedText",
    "count_tokens",
    "emphasis_spans",
    "extract_extra_networks",
    "parse_prompt",
    "parse_prompt_attention",
    "parse_prompt_attention_lenient",
    "prompt_at_step",
    "prompt_schedule",
    "prompt_schedules",
    "refuse_composable",
    "split_composable",
    "tokenize_prompt",
    "unsupported_composable_message",
]
