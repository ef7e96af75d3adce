"""The LoRA and embedding picker: search as you type, thumbnails, what each file is, click to insert.

A popup from the prompt panel. It shows ``NetworkEntry`` values it is handed and emits what the user
picked; the panel puts the tag or word into the prompt. Files made for another family than the loaded
model are greyed with the reason.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImageReader, QPainter, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTabBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.app.network_entries import NetworkEntry
from ldm_studio.ui.flow_layout import FlowLayout

THUMB = 56
DETAIL_PREVIEW = 168
KINDS = ("lora", "embedding")
TAB_NAMES = {"lora": "LoRA", "embedding": "Embeddings"}
_icons: dict[tuple[str, int], QIcon] = {}


def thumbnail(path: Path | None, name: str, size: int = THUMB) -> QPixmap:
    """The preview image beside the file, cropped square; a lettered tile when there is none."""
    if path is not None:
        reader = QImageReader(str(path))
        original = reader.size()
        if original.isValid() and original.width() > 0 and original.height() > 0:
            scale = size / min(original.width(), original.height())
            reader.setScaledSize(QSize(round(original.width() * scale), round(original.height() * scale)))
        image = reader.read()
        if not image.isNull():
            left, top = (image.width() - size) // 2, (image.height() - size) // 2
            return QPixmap.fromImage(image.copy(max(left, 0), max(top, 0), size, size))
    tile = QPixmap(size, size)
    tile.fill(Qt.GlobalColor.transparent)
    painter = QPainter(tile)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor("#2f3442"))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawRoundedRect(0, 0, size, size, 8, 8)
    painter.setPen(QColor("#9db4ff"))
    font = painter.font()
    font.setPixelSize(size // 2 - 4)
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(tile.rect(), Qt.AlignmentFlag.AlignCenter, (name[:1] or "?").upper())
    painter.end()
    return tile


def _icon(entry: NetworkEntry) -> QIcon:
    key = (str(entry.preview or f"letter:{entry.name[:1].upper()}"), THUMB)
    if key not in _icons:
        _icons[key] = QIcon(thumbnail(entry.preview, entry.name))
    return _icons[key]


class NetworkPicker(QFrame):
    """Pick a LoRA (inserts ``<lora:name:1>``) or an embedding (inserts its name)."""

    loraChosen = Signal(str)
    embeddingChosen = Signal(str)
    wordChosen = Signal(str)
    addFolderRequested = Signal(str, str)  # folder, kind
    refreshRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setObjectName("networkPicker")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.entries: list[NetworkEntry] = []
        self.model_family = ""
        self.in_prompt: set[str] = set()
        self.search = QLineEdit()
        self.search.setObjectName("gallerySearch")
        self.search.setPlaceholderText("Search by name, trigger word or base model…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._fill)
        self.tabs = QTabBar()
        self.tabs.setDrawBase(False)
        for kind in KINDS:
            self.tabs.addTab(TAB_NAMES[kind])
        self.tabs.currentChanged.connect(self._fill)
        self.list = QListWidget()
        self.list.setObjectName("networkList")
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setSpacing(2)
        self.list.setUniformItemSizes(True)
        self.list.itemClicked.connect(self._chosen)
        self.list.itemActivated.connect(self._chosen)
        self.list.currentItemChanged.connect(lambda item, _old: self._show_details(item))
        self.empty = QLabel()
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._build_details()
        self.count_label = QLabel()
        self.count_label.setObjectName("hint")
        self.add_folder = QPushButton("Add folder…")
        self.add_folder.setToolTip("Add a folder you keep LoRAs or embeddings in, e.g. A1111's models/Lora")
        self.add_folder.clicked.connect(self._choose_folder)
        self.refresh = QPushButton("Refresh")
        self.refresh.setToolTip("Look through the folders again for new or changed files")
        self.refresh.clicked.connect(self.refreshRequested)
        self._lay_out()
        self.resize(640, 460)

    def _build_details(self) -> None:
        self.details = QWidget()
        self.details.setObjectName("networkDetails")
        self.details.setFixedWidth(DETAIL_PREVIEW + 24)
        self.preview = QLabel()
        self.preview.setFixedSize(DETAIL_PREVIEW, DETAIL_PREVIEW)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel()
        self.title.setObjectName("networkTitle")
        self.title.setWordWrap(True)
        self.about = QLabel()
        self.about.setObjectName("hint")
        self.about.setWordWrap(True)
        self.words_heading = QLabel("TRIGGER WORDS")
        self.words_heading.setObjectName("heading")
        self.words_box = QWidget()
        self.words_flow = FlowLayout(self.words_box)
        layout = QVBoxLayout(self.details)
        layout.setContentsMargins(12, 4, 4, 4)
        for widget in (self.preview, self.title, self.about, self.words_heading, self.words_box):
            layout.addWidget(widget)
        layout.addStretch(1)
        self._word_buttons: list[QToolButton] = []

    def _lay_out(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.tabs)
        top.addWidget(self.search, 1)
        middle = QHBoxLayout()
        lists = QVBoxLayout()
        lists.addWidget(self.list, 1)
        lists.addWidget(self.empty, 1)
        middle.addLayout(lists, 1)
        middle.addWidget(self.details)
        bottom = QHBoxLayout()
        bottom.addWidget(self.count_label, 1)
        bottom.addWidget(self.add_folder)
        bottom.addWidget(self.refresh)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.addLayout(top)
        layout.addLayout(middle, 1)
        layout.addLayout(bottom)

    # ---- state in ---------------------------------------------------------------------------
    def set_entries(self, entries: list[NetworkEntry], model_family: str, in_prompt: set[str]) -> None:
        self.entries, self.model_family, self.in_prompt = list(entries), model_family, set(in_prompt)
        for index, kind in enumerate(KINDS):
            count = sum(1 for entry in self.entries if entry.kind == kind)
            self.tabs.setTabText(index, f"{TAB_NAMES[kind]} ({count})")
        self._fill()

    def set_scanning(self, scanning: bool) -> None:
        self.refresh.setEnabled(not scanning)
        self.refresh.setText("Scanning…" if scanning else "Refresh")

    def kind(self) -> str:
        return KINDS[max(self.tabs.currentIndex(), 0)]

    def set_kind(self, kind: str) -> None:
        self.tabs.setCurrentIndex(KINDS.index(kind))

    def visible_names(self) -> list[str]:
        return [self.list.item(row).data(Qt.ItemDataRole.UserRole).name for row in range(self.list.count())]

    def item_named(self, name: str) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(Qt.ItemDataRole.UserRole).name == name:
                return item
        return None

    # ---- internals --------------------------------------------------------------------------
    def _fill(self, *_args: object) -> None:
        kind, query = self.kind(), self.search.text()
        shown = [entry for entry in self.entries if entry.kind == kind and entry.matches(query)]
        # usable ones first, so a library full of SDXL files does not bury the two SD 1.5 ones
        shown.sort(key=lambda entry: (bool(entry.incompatibility(self.model_family)), entry.name.lower()))
        self.list.clear()
        for entry in shown:
            problem = entry.incompatibility(self.model_family)
            item = QListWidgetItem(_icon(entry), self._row_text(entry))
            item.setData(Qt.ItemDataRole.UserRole, entry)
            item.setSizeHint(QSize(0, THUMB + 8))
            add = f"<lora:{entry.name}:1>" if kind == "lora" else entry.name
            tip = problem or f"Click to add {add}"
            item.setToolTip(f"{entry.path}\n{tip}")
            if problem:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self.list.addItem(item)
        total = sum(1 for entry in self.entries if entry.kind == kind)
        self.count_label.setText(f"{len(shown)} of {total} shown" if query else f"{total} in your library")
        self.empty.setText(self._empty_text(kind, total))
        self.list.setVisible(bool(shown))
        self.empty.setVisible(not shown)
        items = [self.list.item(row) for row in range(self.list.count())]
        self._show_details(next((item for item in items if item.flags() & Qt.ItemFlag.ItemIsEnabled), None))

    def mark_in_prompt(self, names: set[str]) -> None:
        """Update which rows say "in the prompt", leaving the list (and its scroll position) as it is."""
        self.in_prompt = set(names)
        for row in range(self.list.count()):
            item = self.list.item(row)
            item.setText(self._row_text(item.data(Qt.ItemDataRole.UserRole)))

    def _row_text(self, entry: NetworkEntry) -> str:
        used = "  ✓ in the prompt" if entry.kind == "lora" and entry.name in self.in_prompt else ""
        return f"{entry.name}{used}\n{entry.incompatibility(self.model_family) or entry.details}"

    def _empty_text(self, kind: str, total: int) -> str:
        if total:
            return "Nothing matches that search."
        folder = "loras" if kind == "lora" else "embeddings"
        return (
            f"No {TAB_NAMES[kind].lower()} yet. Put files in the “{folder}” folder of LDM Studio's data "
            "folder, or add the folder you already keep them in (A1111: models/Lora, embeddings)."
        )

    def _show_details(self, item: QListWidgetItem | None) -> None:
        entry = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        self.details.setVisible(entry is not None)
        if entry is None:
            return
        self.preview.setPixmap(thumbnail(entry.preview, entry.name, DETAIL_PREVIEW))
        self.title.setText(entry.name)
        self.about.setText(entry.incompatibility(self.model_family) or entry.details.replace(" · ", "\n"))
        for button in self._word_buttons:
            button.deleteLater()
        self._word_buttons = []
        for word in entry.words[:12]:
            button = QToolButton()
            button.setText(word)
            button.setObjectName("chip")
            button.setToolTip(f"Add “{word}” to the prompt")
            button.clicked.connect(lambda _=False, word=word: self.wordChosen.emit(word))
            self.words_flow.addWidget(button)
            self._word_buttons.append(button)
        self.words_heading.setText("TRIGGER WORDS" if entry.trigger_words else "TRAINING TAGS")
        self.words_heading.setVisible(bool(self._word_buttons))

    def _chosen(self, item: QListWidgetItem) -> None:
        if not item.flags() & Qt.ItemFlag.ItemIsEnabled:
            return
        entry: NetworkEntry = item.data(Qt.ItemDataRole.UserRole)
        (self.loraChosen if entry.kind == "lora" else self.embeddingChosen).emit(entry.name)

    def _choose_folder(self) -> None:
        kind = self.kind()
        what = "LoRAs" if kind == "lora" else "embeddings"
        folder = QFileDialog.getExistingDirectory(self, f"Add a folder of {what}")
        if folder:
            self.addFolderRequested.emit(folder, kind)
