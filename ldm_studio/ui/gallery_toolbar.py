"""The gallery's search and filter row: what to show (a GalleryQuery), the tile size, the ⋯ menu."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QSlider,
    QToolButton,
    QWidget,
)

from ldm_studio.gallery.index import GalleryQuery

SEARCH_DELAY_MS = 120  # results while typing, without a query per keystroke
DATE_PRESETS = ("Any time", "Today", "Last 7 days", "Last 30 days", "This year", "Custom range…")
ALL_MODELS = "All models"


def day_start(day: date) -> float:
    return datetime.combine(day, time.min).timestamp()


def date_range(
    preset: str, first: date, last: date, today: date | None = None
) -> tuple[float | None, float | None]:
    """Epoch bounds [from, to) for a date preset; the custom range includes both of its days."""
    today = today or date.today()
    if preset == "Today":
        return day_start(today), None
    if preset == "Last 7 days":
        return day_start(today - timedelta(days=6)), None
    if preset == "Last 30 days":
        return day_start(today - timedelta(days=29)), None
    if preset == "This year":
        return day_start(date(today.year, 1, 1)), None
    if preset == "Custom range…":
        return day_start(min(first, last)), day_start(max(first, last) + timedelta(days=1))
    return None, None


class GalleryToolbar(QWidget):
    filtersChanged = Signal()  # ask current_query() for the new query
    zoomChanged = Signal(int)
    importRequested = Signal()
    openFolderRequested = Signal()
    rebuildRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("galleryToolbar")
        self.search_box = QLineEdit()
        self.search_box.setObjectName("gallerySearch")
        self.search_box.setPlaceholderText("Search prompts…")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setMinimumWidth(160)
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.filtersChanged)
        self.search_box.textChanged.connect(self._search_timer.start)
        self.search_box.returnPressed.connect(self.filtersChanged)
        self.filtersChanged.connect(self._search_timer.stop)

        self.model_filter = QComboBox()
        self.model_filter.setMinimumWidth(110)
        self.model_filter.setToolTip("Show images made with one model")
        self.date_filter = QComboBox()
        self.date_filter.addItems(DATE_PRESETS)
        self.date_from = QDateEdit(QDate.currentDate().addDays(-7), calendarPopup=True)
        self.date_to = QDateEdit(QDate.currentDate(), calendarPopup=True)
        for edit in (self.date_from, self.date_to):
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setVisible(False)
            edit.dateChanged.connect(self.filtersChanged)
        self.favourites_only = QToolButton(text="★  Favourites")
        self.favourites_only.setObjectName("filterToggle")
        self.favourites_only.setCheckable(True)
        self.sort_order = QComboBox()
        self.sort_order.addItems(["Newest first", "Oldest first"])
        self.date_filter.currentIndexChanged.connect(self._date_preset_changed)
        for combo in (self.model_filter, self.date_filter, self.sort_order):
            combo.currentIndexChanged.connect(self.filtersChanged)
        self.favourites_only.toggled.connect(self.filtersChanged)

        self.zoom = QSlider(Qt.Orientation.Horizontal)
        self.zoom.setRange(96, 256)
        self.zoom.setValue(168)
        self.zoom.setFixedWidth(80)
        self.zoom.setToolTip("Thumbnail size")
        self.zoom.valueChanged.connect(self.zoomChanged)

        more = QToolButton(text="⋯")
        more.setToolTip("More")
        more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(more)
        menu.addAction("Import a folder of images…", self.importRequested)
        menu.addAction("Open the gallery folder", self.openFolderRequested)
        menu.addSeparator()
        menu.addAction("Rebuild the index from the files", self.rebuildRequested)
        more.setMenu(menu)

        row = QHBoxLayout(self)
        row.setContentsMargins(12, 8, 12, 8)
        row.setSpacing(8)
        row.addWidget(self.search_box, 2)
        for widget in (
            self.model_filter,
            self.date_filter,
            self.date_from,
            self.date_to,
            self.favourites_only,
            self.sort_order,
        ):
            row.addWidget(widget)
        row.addStretch(1)
        zoom_label = QLabel("Size")
        zoom_label.setObjectName("hint")
        row.addWidget(zoom_label)
        row.addWidget(self.zoom)
        row.addWidget(more)

    def current_query(self) -> GalleryQuery:
        model = self.model_filter.currentText()
        first, last = self.date_from.date().toPython(), self.date_to.date().toPython()
        date_from, date_to = date_range(self.date_filter.currentText(), first, last)
        return GalleryQuery(
            text=self.search_box.text(),
            model=None if model in ("", ALL_MODELS) else model,
            date_from=date_from,
            date_to=date_to,
            favourites_only=self.favourites_only.isChecked(),
            newest_first=self.sort_order.currentIndex() == 0,
        )

    def set_models(self, names: list[str]) -> None:
        """The model filter's choices, keeping the one chosen when it is still there."""
        current = self.model_filter.currentText()
        self.model_filter.blockSignals(True)
        self.model_filter.clear()
        self.model_filter.addItem(ALL_MODELS)
        self.model_filter.addItems(names)
        self.model_filter.setCurrentIndex(max(self.model_filter.findText(current), 0))
        self.model_filter.blockSignals(False)

    def _date_preset_changed(self) -> None:
        custom = self.date_filter.currentText() == "Custom range…"
        self.date_from.setVisible(custom)
        self.date_to.setVisible(custom)
