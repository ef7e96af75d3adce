"""The prompt box's helpers, owned by the session: the LoRA / embedding library, the token counter and
the lookup of a reused image's LoRAs and embeddings.

Kept apart from ``Session`` so the session stays one screen of intents; it creates one of these and
forwards ``reuse`` and ``shutdown``. The window binds the library and the counter directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from ldm_studio.app import draft as drafts
from ldm_studio.app.network_library import NetworkLibraryModel
from ldm_studio.app.network_resolution import NetworkResolution, wanted_networks
from ldm_studio.app.token_counter import TokenCounter
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import ImageMetadata

if TYPE_CHECKING:
    from ldm_studio.app.backend import ModelSummary
    from ldm_studio.app.session import Session


class PromptTools(QObject):
    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.session = session
        self.networks = NetworkLibraryModel(self)
        self.tokens = TokenCounter(self)
        self.networks.failed.connect(session.error)
        self.networks.resolved.connect(self._on_resolved)
        self.networks.entriesChanged.connect(self.tokens.set_embeddings)
        self.networks.folderAdded.connect(
            lambda folder, kind: session.status.emit(f"Added {folder}; scanning it…", 6000)
        )
        session.modelChanged.connect(self._on_model)
        self._ticket = 0  # the latest reuse; an older lookup's answer is dropped

    def _on_model(self, summary: ModelSummary | None) -> None:
        if summary is None:
            self.tokens.set_model("", "")
        else:
            self.tokens.set_model(summary.tokenizer_path, summary.family)

    def look_up(self, metadata: ImageMetadata, reused: GenerationRequest, mode: str) -> None:
        """Find a reused image's LoRAs and embeddings in the library, off the GUI thread."""
        self._ticket += 1
        wanted = wanted_networks(reused.prompt, metadata.loras, metadata.embeddings)
        if mode != "seed" and wanted:
            self.networks.resolve(self._ticket, reused.prompt, reused.negative_prompt, wanted)

    def _on_resolved(self, ticket: int, resolution: NetworkResolution) -> None:
        if ticket != self._ticket:
            return  # another image was reused since
        session = self.session
        renamed = drafts.with_resolved_networks(session.draft, resolution)
        if renamed is not None:
            session.replace_draft(renamed, "prompt")
            session.status.emit(resolution.note, 8000)
        if resolution.message:
            session.error.emit(resolution.message)

    def shutdown(self) -> None:
        self.networks.shutdown()
        self.tokens.shutdown()
