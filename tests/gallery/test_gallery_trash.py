"""Recoverable deletes: the app trash and its undo."""

from __future__ import annotations

from ldm_studio.gallery.trash import Trash
from ldm_studio.paths import user_dirs


def test_app_trash_moves_files_and_restores_them(tmp_path):
    files = []
    for name in ("a.png", "b.png"):
        path = tmp_path / "gallery" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(name.encode())
        files.append(path)
    trash = Trash(use_system_trash=False)
    assert trash.folder == user_dirs().data / "trash"
    batch = trash.delete([*files, tmp_path / "missing.png"])
    assert batch.deleted == files and batch.can_undo
    assert [path for path, _ in batch.failed] == [tmp_path / "missing.png"]
    assert not any(path.exists() for path in files)
    assert all(trashed.read_bytes() == original.name.encode() for original, trashed in batch.moved)

    files[1].write_bytes(b"a new file took the name")
    assert trash.restore(batch) == [files[0]]  # never overwrites the newcomer
    assert files[0].read_bytes() == b"a.png"
    assert files[1].read_bytes() == b"a new file took the name"
