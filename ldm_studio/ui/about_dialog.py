"""Help → About: version, the machine and libraries it runs on, licences, and the user's folders.

torch, diffusers and transformers are never imported here to read a version: versions come from
the installed metadata. Only the device list needs torch, and it is asked for when the dialog
opens (by then the worker has usually imported torch already).
"""

from __future__ import annotations

import importlib.metadata as metadata
import platform
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtGui import QDesktopServices, QGuiApplication, QIcon
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ldm_studio import APP_NAME, __version__
from ldm_studio.app.devices import available_devices
from ldm_studio.desktop import APP_ID, ICON_THEME
from ldm_studio.licenses import Component, Library, python_libraries, shipped_components
from ldm_studio.paths import UserDirs, resource

LIBRARIES = ("torch", "diffusers", "transformers", "safetensors", "numpy", "PySide6-Essentials")
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


def application_icon() -> QIcon:
    """The app icon at every shipped size (the window and taskbar pick the one they need)."""
    icon = QIcon()
    for size in ICON_SIZES:
        path = resource("icons", ICON_THEME, f"{size}x{size}", "apps", f"{APP_ID}.png")
        if path.is_file():
            icon.addFile(str(path))
    return icon


def installed_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def system_rows(device: str | None) -> list[tuple[str, str]]:
    """(label, value) pairs describing where LDM Studio runs: what the System tab shows and copies."""
    rows = [
        ("LDM Studio", __version__),
        ("Running on", device or "no model loaded yet"),
        ("Devices available", available_devices()),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("Qt", qVersion()),
    ]
    rows += [(name, installed_version(name)) for name in LIBRARIES]
    rows.append(("System", platform.platform()))
    if getattr(sys, "frozen", False):
        rows.append(("Build", "stand-alone application"))
    return rows


def folder_rows(dirs: UserDirs) -> list[tuple[str, Path]]:
    return [("Config", dirs.config), ("Data", dirs.data), ("Cache", dirs.cache), ("Logs", dirs.logs)]


class AboutDialog(QDialog):
    """Four tabs: About, System, Licences, Folders.

    ``device`` is what the current model runs on (the window knows; e.g. "CPU · float32").
    ``open_url`` opens a folder in the file manager; tests pass their own.
    """

    def __init__(
        self,
        dirs: UserDirs,
        device: str | None = None,
        parent: QWidget | None = None,
        open_url: Callable[[QUrl], bool] = QDesktopServices.openUrl,
    ) -> None:
        super().__init__(parent)
        self.dirs = dirs
        self.open_url = open_url
        self.rows = system_rows(device)
        self.setWindowTitle(f"About {APP_NAME}")
        self.resize(760, 560)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._about_tab(), "About")
        self.tabs.addTab(self._system_tab(), "System")
        self.tabs.addTab(self._licences_tab(), "Licences")
        self.tabs.addTab(self._folders_tab(), "Folders")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("Copy details", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.setToolTip("Copy the version and system details, e.g. for a bug report")
        self.copy_button.clicked.connect(self.copy_details)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addWidget(buttons)

    # ---- tabs ---------------------------------------------------------------------------------
    def _about_tab(self) -> QWidget:
        icon = QLabel()
        icon.setPixmap(application_icon().pixmap(128, 128))
        title = QLabel(f"<h2>{APP_NAME}</h2><p>Version {__version__}</p>")
        text = QLabel(
            "A desktop studio for latent diffusion models: pick a model, type a prompt and watch "
            "every denoising step. Everything runs on this computer; nothing is downloaded."
        )
        text.setWordWrap(True)
        device = QLabel(f"Running on: {self.rows[1][1]}")
        device.setObjectName("hint")
        column = QVBoxLayout()
        column.addWidget(title)
        column.addWidget(text)
        column.addWidget(device)
        column.addStretch(1)
        tab = QWidget()
        row = QHBoxLayout(tab)
        row.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(column, 1)
        return tab

    def _system_tab(self) -> QWidget:
        tab = QWidget()
        form = QFormLayout(tab)
        self.system_labels: dict[str, QLabel] = {}
        for name, value in self.rows:
            label = QLabel(value)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            form.addRow(f"{name}:", label)
            self.system_labels[name] = label
        return tab

    def _licences_tab(self) -> QWidget:
        self.licence_list = QListWidget()
        self.licence_summary = QLabel()
        self.licence_summary.setWordWrap(True)
        self.licence_summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.licence_text = QPlainTextEdit()
        self.licence_text.setReadOnly(True)
        self._add_heading("Shipped with LDM Studio")
        for component in shipped_components():
            self._add_licence_entry(component, f"{component.name} — {component.license}")
        self._add_heading("Python libraries")
        for library in python_libraries():
            self._add_licence_entry(library, f"{library.name} {library.version} — {library.license}")
        self.licence_list.currentItemChanged.connect(self._show_licence)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.licence_summary)
        right_layout.addWidget(self.licence_text, 1)
        splitter = QSplitter()
        splitter.addWidget(self.licence_list)
        splitter.addWidget(right)
        splitter.setSizes([300, 460])
        tab = QWidget()
        QVBoxLayout(tab).addWidget(splitter)
        self.licence_list.setCurrentRow(1)  # the first entry under the first heading
        return tab

    def _add_heading(self, text: str) -> None:
        item = QListWidgetItem(text.upper(), self.licence_list)
        item.setFlags(Qt.ItemFlag.NoItemFlags)  # a section title: not selectable

    def _add_licence_entry(self, entry: Component | Library, label: str) -> None:
        item = QListWidgetItem(label, self.licence_list)
        item.setData(Qt.ItemDataRole.UserRole, entry)
        item.setToolTip(label)

    def _show_licence(self, item: QListWidgetItem | None) -> None:
        entry = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if entry is None:
            return
        if isinstance(entry, Component):
            summary = f"<b>{entry.name}</b>: {entry.role}<br>{entry.license}<br>{entry.notice}"
        else:
            summary = f"<b>{entry.name} {entry.version}</b>: Python library<br>{entry.license}"
        self.licence_summary.setText(summary)
        try:
            text = entry.text()
        except OSError as error:
            text = f"The licence text could not be read: {error}"
        self.licence_text.setPlainText(text)

    def _folders_tab(self) -> QWidget:
        tab = QWidget()
        grid = QGridLayout(tab)
        self.folder_buttons: dict[str, QPushButton] = {}
        self.folder_fields: dict[str, QLineEdit] = {}
        for row, (name, path) in enumerate(folder_rows(self.dirs)):
            field = QLineEdit(str(path))
            field.setReadOnly(True)
            button = QPushButton("Open")
            button.setToolTip(f"Open {path} in the file manager")
            button.clicked.connect(lambda _checked=False, folder=path: self.open_folder(folder))
            grid.addWidget(QLabel(f"{name}:"), row, 0)
            grid.addWidget(field, row, 1)
            grid.addWidget(button, row, 2)
            self.folder_buttons[name] = button
            self.folder_fields[name] = field
        self.folder_status = QLabel()
        self.folder_status.setWordWrap(True)
        grid.addWidget(self.folder_status, len(self.folder_buttons), 0, 1, 3)
        grid.setRowStretch(len(self.folder_buttons) + 1, 1)
        return tab

    # ---- actions ------------------------------------------------------------------------------
    def open_folder(self, folder: Path) -> bool:
        """Show ``folder`` in the file manager, creating it first (a log folder may not exist yet)."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self.folder_status.setText(f"{folder} cannot be created: {error.strerror or error}")
            return False
        if not self.open_url(QUrl.fromLocalFile(str(folder))):
            self.folder_status.setText(
                f"No file manager opened {folder}: this desktop has no default application for folders. "
                "The path above can be copied."
            )
            return False
        self.folder_status.setText("")
        return True

    def details_text(self) -> str:
        lines = [f"{name}: {value}" for name, value in self.rows]
        lines += [f"{name} folder: {path}" for name, path in folder_rows(self.dirs)]
        return "\n".join(lines)

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.details_text())
