"""What sits under the prompt boxes: the LoRA / embedding picker button, the token counters, the AND
warning and the rows of LoRAs the prompt uses.

The prompt text stays the truth: LoRAs are ``<lora:name:weight>`` tags in it, embeddings their names.
Every edit here goes through the prompt box's cursor, so Ctrl+Z undoes a slider move like typing.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ldm_studio.app.network_entries import NetworkEntry
from ldm_studio.app.prompt_text import lora_tag, loras_in, prompt_warning, removal_range, reweighted
from ldm_studio.app.token_counter import PromptCounts
from ldm_studio.ui.active_loras import ActiveLoras
from ldm_studio.ui.lora_picker import NetworkPicker
from ldm_studio.ui.prompt_edit import PromptEdit
from ldm_studio.ui.token_counter import TokenCountLabel


class PromptExtras(QWidget):
    addFolderRequested = Signal(str, str)  # folder, kind
    refreshRequested = Signal()

    def __init__(self, prompt: PromptEdit, negative: PromptEdit, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt, self.negative = prompt, negative
        self._last_box = prompt  # where an embedding goes: bad-hand embeddings live in the negative
        prompt.focused.connect(lambda: setattr(self, "_last_box", prompt))
        negative.focused.connect(lambda: setattr(self, "_last_box", negative))
        self.entries: list[NetworkEntry] = []
        self.model_family = ""

        self.picker_button = QPushButton("LoRA && embeddings…")
        self.picker_button.setObjectName("pickerButton")
        self.picker_button.setToolTip("Add a LoRA or an embedding from your library (search, previews)")
        self.picker_button.clicked.connect(self.open_picker)
        self.counter = TokenCountLabel()
        self.negative_counter = TokenCountLabel()
        self.warning = QLabel()
        self.warning.setObjectName("promptWarning")
        self.warning.setWordWrap(True)
        self.warning.hide()
        self.active = ActiveLoras()
        self.active.weightChanged.connect(self._set_weight)
        self.active.removeRequested.connect(self._remove)
        self.active.wordChosen.connect(lambda word: self.prompt.insert_phrase(word))
        self.picker = NetworkPicker(self)
        self.picker.loraChosen.connect(self.insert_lora)
        self.picker.embeddingChosen.connect(self.insert_embedding)
        self.picker.wordChosen.connect(lambda word: self.prompt.insert_phrase(word))
        self.picker.addFolderRequested.connect(self.addFolderRequested)
        self.picker.refreshRequested.connect(self.refreshRequested)

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.picker_button)
        row.addStretch(1)
        row.addWidget(self.counter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(row)
        layout.addWidget(self.warning)
        layout.addWidget(self.active)
        prompt.textChanged.connect(self._prompt_changed)
        self._prompt_changed()

    # ---- state in ---------------------------------------------------------------------------
    def set_networks(self, entries: list[NetworkEntry]) -> None:
        self.entries = list(entries)
        self._prompt_changed()

    def set_model_family(self, family: str) -> None:
        self.model_family = family
        self._prompt_changed()

    def set_scanning(self, scanning: bool) -> None:
        self.picker.set_scanning(scanning)

    def show_counts(self, counts: PromptCounts) -> None:
        self.counter.show_count(counts.positive, counts.positive_chunks)
        self.negative_counter.show_count(counts.negative)

    # ---- intents ----------------------------------------------------------------------------
    def open_picker(self) -> None:
        self._refresh_picker()
        below = self.picker_button.mapToGlobal(QPoint(0, self.picker_button.height() + 4))
        self.picker.move(below)
        self.picker.show()
        self.picker.search.setFocus()

    def insert_lora(self, name: str, weight: float = 1.0) -> None:
        """``<lora:name:1>`` at the prompt's cursor; a LoRA already in the prompt is not added twice."""
        if any(tag.name == name for tag in loras_in(self.prompt.text())):
            return
        self.prompt.insert_phrase(lora_tag(name, weight))

    def insert_embedding(self, name: str) -> None:
        self._last_box.insert_phrase(name)

    # ---- internals --------------------------------------------------------------------------
    def _prompt_changed(self) -> None:
        text = self.prompt.text()
        warning = prompt_warning(text)
        self.warning.setText(f"⚠ {warning}" if warning else "")
        self.warning.setVisible(bool(warning))
        by_name = {entry.name: entry for entry in self.entries if entry.kind == "lora"}
        tags = loras_in(text)
        problems = {}
        for tag in tags:
            entry = by_name.get(tag.name)
            if entry is None:
                problems[tag.name] = f"{tag.name} is not in your LoRA folders"
            elif entry.incompatibility(self.model_family):
                problems[tag.name] = entry.incompatibility(self.model_family)
        words = {name: entry.words for name, entry in by_name.items()}
        self.active.show_tags(tags, words, problems if self.entries else {})
        if self.picker.isVisible():
            self.picker.mark_in_prompt({tag.name for tag in tags})

    def _refresh_picker(self) -> None:
        in_prompt = {tag.name for tag in loras_in(self.prompt.text())}
        self.picker.set_entries(self.entries, self.model_family, in_prompt)

    def _set_weight(self, index: int, weight: float) -> None:
        tags = loras_in(self.prompt.text())
        if 0 <= index < len(tags):
            tag = tags[index]
            self.prompt.replace_range(tag.start, tag.end, reweighted(tag, weight))

    def _remove(self, index: int) -> None:
        text = self.prompt.text()
        tags = loras_in(text)
        if 0 <= index < len(tags):
            self.prompt.replace_range(*removal_range(text, tags[index]), "")
