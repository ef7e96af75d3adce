"""Open the gallery panel on a synthetic gallery, for a look (and a screenshot) without a model.

    python bench/gallery_demo.py [--count 200] [--screenshot shot.png] [--viewer]

Everything lives in a temporary LDM_STUDIO_HOME; nothing touches the user's folders.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--screenshot", type=Path, help="save a picture of the window and quit")
    parser.add_argument("--viewer", action="store_true", help="open the large viewer on the first image")
    parser.add_argument("--search", default="", help="type this into the search box")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="ldm-gallery-demo-"))
    os.environ["LDM_STUDIO_HOME"] = str(home)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow

    from bench.gallery_synthetic import build_gallery
    from ldm_studio.app.gallery_actions import GalleryActions
    from ldm_studio.gallery.index import GalleryIndex
    from ldm_studio.gallery.store import GalleryStore
    from ldm_studio.gallery.thumbnails import ThumbnailCache
    from ldm_studio.paths import user_dirs
    from ldm_studio.ui.gallery_panel import GalleryPanel
    from ldm_studio.ui.style import apply_style

    store = GalleryStore(user_dirs().default_gallery)
    build_gallery(store.root, args.count, size=args.size, days=60)

    app = QApplication(sys.argv[:1])
    apply_style(app)
    window = QMainWindow()
    window.setWindowTitle("LDM Studio — Gallery")
    panel = GalleryPanel(GalleryActions(store, GalleryIndex(), ThumbnailCache()))
    panel.actions.status.connect(lambda text: window.statusBar().showMessage(text, 5000))
    reuse = panel.actions.reuseRequested
    reuse.connect(lambda meta, mode: print(f"reuse {mode}: {meta.prompt!r} seed {meta.seed}"))
    window.setCentralWidget(panel)
    window.resize(1360, 860)
    window.show()

    def arrange() -> None:
        panel.model.set_favourite([1, 4, 9], True)
        panel.select_rows([2, 3])
        if args.search:
            panel.toolbar.search_box.setText(args.search)
            panel.apply_filters()
        if args.viewer:
            panel.open_viewer(0)

    def capture() -> None:
        window.grab().save(str(args.screenshot))
        print(args.screenshot)
        panel.actions.shutdown()
        app.quit()

    panel.model.reconciled.connect(lambda report: QTimer.singleShot(0, arrange))
    if args.screenshot:
        # Give the background scan and the thumbnail threads time to finish before the picture.
        QTimer.singleShot(4000, capture)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
