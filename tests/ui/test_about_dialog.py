import importlib.metadata as metadata
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl, qVersion

from ldm_studio import __version__
from ldm_studio.paths import user_dirs
from ldm_studio.ui.about_dialog import AboutDialog, application_icon


@pytest.fixture
def opened():
    return []


@pytest.fixture
def dialog(qtbot, opened):
    def open_url(url: QUrl) -> bool:
        opened.append(url)
        return True

    about = AboutDialog(user_dirs(), device="CPU · float32", open_url=open_url)
    qtbot.addWidget(about)
    return about


def test_shows_version_device_and_library_versions(dialog):
    labels = {name: label.text() for name, label in dialog.system_labels.items()}
    assert labels["LDM Studio"] == __version__
    assert labels["Running on"] == "CPU · float32"
    assert "CPU" in labels["Devices available"]
    assert labels["Qt"] == qVersion()
    for library in ("torch", "diffusers", "transformers"):
        assert labels[library] == metadata.version(library)
    details = dialog.details_text()
    assert f"torch: {metadata.version('torch')}" in details
    assert f"Logs folder: {user_dirs().logs}" in details


def test_copy_details_puts_them_on_the_clipboard(dialog):
    from PySide6.QtGui import QGuiApplication

    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == dialog.details_text()


def test_each_folder_has_an_open_button(qtbot, dialog, opened):
    dirs = user_dirs()
    expected = {"Config": dirs.config, "Data": dirs.data, "Cache": dirs.cache, "Logs": dirs.logs}
    assert {name: Path(field.text()) for name, field in dialog.folder_fields.items()} == expected
    for name, folder in expected.items():
        assert not folder.exists()  # a fresh LDM_STUDIO_HOME: the button must create it
        qtbot.mouseClick(dialog.folder_buttons[name], Qt.MouseButton.LeftButton)
        assert folder.is_dir()
        assert opened[-1] == QUrl.fromLocalFile(str(folder))
    assert len(opened) == 4


def test_says_why_when_no_file_manager_opens_the_folder(qtbot):
    about = AboutDialog(user_dirs(), open_url=lambda url: False)
    qtbot.addWidget(about)
    about.folder_buttons["Logs"].click()
    assert "No file manager" in about.folder_status.text()
    assert about.system_labels["Running on"].text() == "no model loaded yet"


def test_lists_licences_of_qt_the_app_and_its_libraries(dialog):
    labels = [dialog.licence_list.item(row).text() for row in range(dialog.licence_list.count())]
    assert any(label.startswith("Qt 6") and "LGPL-3.0" in label for label in labels)
    assert any(label.startswith("LDM Studio") for label in labels)
    assert any(label.startswith(f"torch {metadata.version('torch')}") for label in labels)
    assert any(label.startswith("diffusers ") for label in labels)

    assert dialog.licence_list.currentItem().text().startswith("LDM Studio")  # headings are skipped
    assert "MIT License" in dialog.licence_text.toPlainText()
    assert labels.index("PYTHON LIBRARIES") > labels.index("SHIPPED WITH LDM STUDIO")

    qt_row = next(row for row, label in enumerate(labels) if label.startswith("Qt 6"))
    dialog.licence_list.setCurrentRow(qt_row)
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in dialog.licence_text.toPlainText()
    assert "Replacing the libraries" in dialog.licence_text.toPlainText()

    torch_row = next(row for row, label in enumerate(labels) if label.startswith("torch "))
    dialog.licence_list.setCurrentRow(torch_row)
    assert "Copyright" in dialog.licence_text.toPlainText()


def test_application_icon_has_every_size():
    sizes = {(size.width(), size.height()) for size in application_icon().availableSizes()}
    assert sizes == {(n, n) for n in (16, 32, 48, 64, 128, 256, 512)}
