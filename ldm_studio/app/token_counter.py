"""The token counter under the prompt boxes (A1111's ``42/75``), without touching the engine worker.

The loaded model's tokenizer is read once per model on a background thread (the worker hands its
folder over in ``ModelSummary.tokenizer_path``); counts run there too, a moment after the typing
stops, and only the latest count is shown. Embeddings in the library count their vectors.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from ldm_studio.app.network_entries import NetworkEntry

log = logging.getLogger(__name__)
DEBOUNCE_MS = 150
VOCABULARY_FILES = ("vocab.json", "merges.txt")


@dataclass(frozen=True)
class PromptCounts:
    """What the two counters say: ``42/75`` (``""`` when no tokenizer is known)."""

    positive: str
    negative: str
    positive_chunks: int = 1  # how many 75-token chunks the prompt takes

    @classmethod
    def of(cls, positive: Any, negative: Any, chunk: int) -> PromptCounts:
        return cls(str(positive), str(negative), max(1, positive.limit // max(chunk, 1)))


def load_tokenizer(folder: Path) -> Any:
    """A tokenizer from a ``tokenizer/`` folder; a shipped config-only folder (single-file checkpoints)
    gets the shared CLIP vocabulary, as the engine's loader gives it."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    if any((folder / name).is_file() for name in ("tokenizer.json", "vocab.json", "vocab.txt")):
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    from ldm_studio.paths import resource

    with tempfile.TemporaryDirectory(prefix="ldm-tokenizer-") as temporary:
        copy = Path(temporary) / "tokenizer"
        shutil.copytree(folder, copy)
        for name in VOCABULARY_FILES:
            shutil.copyfile(resource("tokenizers", "clip", name), copy / name)
        return AutoTokenizer.from_pretrained(str(copy), local_files_only=True)


class _Rows:
    """Stands in for an embedding's vectors: counting needs only how many there are."""

    def __init__(self, count: int) -> None:
        self.shape = (count, 0)


def counting_embeddings(entries: Iterable[NetworkEntry], model_family: str) -> tuple:
    """The library's embeddings that this model can use, as the prompt toolkit's ``Embedding``."""
    from ldm_studio.engine.prompts import Embedding

    return tuple(
        Embedding(entry.name, {"default": _Rows(entry.vector_count)})
        for entry in entries
        if entry.kind == "embedding" and entry.vector_count and not entry.incompatibility(model_family)
    )


class TokenCounter(QObject):
    counted = Signal(object)  # PromptCounts
    unavailable = Signal(str)  # why there is no count (no model, unreadable tokenizer)

    def __init__(self, parent: QObject | None = None, debounce_ms: int = DEBOUNCE_MS) -> None:
        super().__init__(parent)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="token-counter")
        self._tokenizer: Any = None  # engine.prompts.PromptTokenizer, touched on the background thread
        self._tokenizer_path = ""
        self._family = ""
        self._entries: tuple[NetworkEntry, ...] = ()
        self._embeddings: tuple = ()
        self._pending: tuple[str, str, int] = ("", "", 20)
        self._ticket = 0
        self._closed = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self._count_now)

    def set_model(self, tokenizer_path: str, family: str) -> None:
        """Read the model's tokenizer (once per folder) and count again; "" when no model is loaded."""
        self._family = family
        if tokenizer_path != self._tokenizer_path:
            self._tokenizer_path = tokenizer_path
            self._submit(self._load, tokenizer_path)
        self.set_embeddings(self._entries)

    def set_embeddings(self, entries: Iterable[NetworkEntry]) -> None:
        self._entries = tuple(entries)
        self._submit(self._set_embeddings, self._entries, self._family)
        self._timer.start()

    def request(self, prompt: str, negative: str, steps: int = 20) -> None:
        """Count these texts a moment from now (typing resets the wait)."""
        self._pending = (prompt, negative, steps)
        self._timer.start()

    def flush(self) -> None:
        """Count the pending texts at once (tests; the window never needs to wait)."""
        self._timer.stop()
        self._count_now()

    def shutdown(self) -> None:
        self._closed = True
        self._timer.stop()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _submit(self, job, *args: object) -> None:  # noqa: ANN001
        if not self._closed:
            self._executor.submit(job, *args)

    def _count_now(self) -> None:
        self._ticket += 1
        self._submit(self._count, self._ticket, *self._pending)

    # ---- the background thread ----------------------------------------------------------------
    def _load(self, path: str) -> None:
        self._tokenizer = None
        if not path:
            return
        try:
            from ldm_studio.engine.prompts import PromptTokenizer

            self._tokenizer = PromptTokenizer.of(load_tokenizer(Path(path)))
        except Exception as error:  # noqa: BLE001 - the counter is a help: say why it is missing
            log.warning("no token counter for %s: %s", path, error)
            if not self._closed:
                self.unavailable.emit(f"The token counter cannot read this model's tokenizer: {error}")

    def _set_embeddings(self, entries: tuple[NetworkEntry, ...], family: str) -> None:
        self._embeddings = counting_embeddings(entries, family)

    def _count(self, ticket: int, prompt: str, negative: str, steps: int) -> None:
        if ticket != self._ticket or self._closed:
            return  # newer text is on its way
        if self._tokenizer is None:
            self.counted.emit(PromptCounts("", ""))
            return
        from ldm_studio.engine.prompts import count_tokens

        vocab = self._tokenizer
        positive = count_tokens(vocab, prompt, self._embeddings, steps=steps)
        negative_count = count_tokens(vocab, negative, self._embeddings, steps=steps, negative=True)
        if ticket == self._ticket and not self._closed:
            self.counted.emit(PromptCounts.of(positive, negative_count, vocab.chunk_length))
