"""The parts picker in Model settings: for an SD 3 / FLUX single file, where each separate part
(text encoders, VAE, T5 tokenizer) comes from, with Choose… and Clear. Rows come from app.model_parts."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.app.model_parts import flow_family, part_problem, part_rows

MISSING_COLOUR = "#ff8a80"
TOKENIZER_KEY = "t5_tokenizer"


class ModelPartsBox(QWidget):
    """Each needed part's source, and the user's choices; ``values()`` is what "parts" stores."""

    def __init__(self, model_path: Path, saved: dict | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_path = Path(model_path)
        self.family = flow_family(self.model_path) or "flux"
        saved = {str(k): str(v) for k, v in (saved or {}).items() if v}
        self.paths: dict[str, QLineEdit] = {}
        self.statuses: dict[str, QLabel] = {}
        form = QFormLayout()
        for row in part_rows(self.model_path, saved):
            if row.inside:
                form.addRow(row.title, QLabel("inside the file"))
                continue
            edit = QLineEdit(saved.get(row.part, saved.get("ae" if row.part == "vae" else row.part, "")))
            edit.setPlaceholderText(f"found automatically as {row.file_name}" if row.file_name else "")
            edit.setToolTip("The file to use; empty: looked for beside the model and in the library folders")
            edit.textChanged.connect(self.refresh)
            self.paths[row.part] = edit
            status = QLabel()
            status.setWordWrap(True)
            self.statuses[row.part] = status
            form.addRow(row.title, self._row(edit, row.part, status))
        self.tokenizer = QLineEdit(saved.get(TOKENIZER_KEY, saved.get("tokenizers", "")))
        self.tokenizer.setPlaceholderText("empty: the T5 tokenizer LDM Studio ships is used")
        self.tokenizer.setToolTip("A T5 tokenizer folder, or a FLUX / SD 3 diffusers folder (its tokenizers)")
        form.addRow("T5 tokenizer (optional)", self._row(self.tokenizer, TOKENIZER_KEY, None))
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet(f"color: {MISSING_COLOUR}")
        self.problem_label.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        heading = QLabel("Separate parts")
        heading.setObjectName("heading")
        layout.addWidget(heading)
        layout.addLayout(form)
        layout.addWidget(self.problem_label)
        self.refresh()

    def _row(self, edit: QLineEdit, part: str, status: QLabel | None) -> QWidget:
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        line = QHBoxLayout()
        line.addWidget(edit, 1)
        choose = QPushButton("Choose…")
        choose.clicked.connect(lambda: self._choose(part, edit))
        clear = QPushButton("Clear")
        clear.clicked.connect(edit.clear)
        line.addWidget(choose)
        line.addWidget(clear)
        column.addLayout(line)
        if status is not None:
            column.addWidget(status)
        return box

    def _choose(self, part: str, edit: QLineEdit) -> None:
        start = edit.text() or str(self.model_path.parent)
        if part == TOKENIZER_KEY:
            path = QFileDialog.getExistingDirectory(self, "Choose a T5 tokenizer folder", start)
        else:
            path, _ = QFileDialog.getOpenFileName(
                self, "Choose a part", start, "Safetensors (*.safetensors *.sft);;All files (*)"
            )
        if path:
            edit.setText(path)

    def values(self) -> dict[str, str] | None:
        """The chosen paths by part name (None: nothing chosen, every part found on its own)."""
        chosen = {part: edit.text().strip() for part, edit in self.paths.items() if edit.text().strip()}
        folder = self.tokenizer.text().strip()
        if folder:  # a diffusers folder gives the CLIP tokenizer too (engine flow_parts.TOKENIZER_PARTS)
            chosen["tokenizers" if (Path(folder) / "tokenizer").is_dir() else TOKENIZER_KEY] = folder
        return chosen or None

    def refresh(self) -> None:
        """Each row's source as the engine would find it with the choices as they stand."""
        for row in part_rows(self.model_path, self.values()):
            status = self.statuses.get(row.part)
            if status is None:
                continue
            colour = f"color: {MISSING_COLOUR}" if row.missing else "color: #9aa0aa"
            status.setStyleSheet(colour)
            status.setText(row.status)

    def problem(self) -> str:
        """ "" when every chosen file can be its part, else the sentence for the first that cannot
        (also shown under the rows)."""
        text = ""
        for part, edit in self.paths.items():
            if edit.text().strip():
                text = part_problem(part, Path(edit.text().strip()), self.family)
                if text:
                    break
        folder = self.tokenizer.text().strip()
        if not text and folder and not Path(folder).expanduser().is_dir():
            text = f"the T5 tokenizer folder {folder} does not exist"
        self.problem_label.setText(text)
        self.problem_label.setVisible(bool(text))
        return text
