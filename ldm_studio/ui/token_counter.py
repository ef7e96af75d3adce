"""A1111's token counter under a prompt box: ``42/75``, then ``80/150`` once a second chunk starts."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

CHUNK_NOTE = (
    "Tokens used / what the prompt's 75-token chunks hold. A longer prompt takes another chunk: "
    "each chunk is read on its own, so words near a chunk's end weigh a little less together. "
    "BREAK starts a new chunk; LoRA tags take no tokens; an embedding takes its vectors."
)


class TokenCountLabel(QLabel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tokenCount")
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.setToolTip(CHUNK_NOTE)
        self.show_count("")

    def show_count(self, text: str, chunks: int = 1) -> None:
        """``text`` is ``used/limit``; "" hides the count (no model, or its tokenizer is unreadable)."""
        self.setText(text)
        self.setProperty("long", chunks > 1)
        self.style().unpolish(self)
        self.style().polish(self)
