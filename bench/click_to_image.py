"""Click to image: from pressing Generate to the finished image shown (and saved) in the window.
Target: < 1.5 s for the bundled model, 64x64, 20 steps, CFG, Fast preview on.

    nice python3 bench/click_to_image.py [--model PATH] [--clicks 5] [--steps 20]

The real studio window (offscreen) over the real worker, engine and gallery (autosave on, into a
temporary folder). The first click is the coldest (text encoding, first-call allocations); later
clicks use another prompt each, so the text is encoded every time. "engine" is the time the engine
itself reports (Finished.elapsed); the rest is the app: queueing, signals, QImages, saving, painting.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.models import bench_model  # noqa: E402


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--model")
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    scratch = Path(tempfile.mkdtemp())
    os.environ["LDM_STUDIO_HOME"] = str(scratch / "home")
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from ldm_studio.app.backend import TorchBackend
    from ldm_studio.app.saving import save_finished
    from ldm_studio.app.session import Session
    from ldm_studio.app.settings import Settings
    from ldm_studio.app.worker import EngineWorker
    from ldm_studio.engine.request import GenerationRequest
    from ldm_studio.gallery.store import GalleryStore
    from ldm_studio.paths import user_dirs
    from ldm_studio.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    model = bench_model(args.model, scratch)
    store = GalleryStore(scratch / "gallery")
    worker = EngineWorker(TorchBackend, lambda result: save_finished(store, result))
    window = MainWindow(Session(worker, Settings(), user_dirs().ensure()))
    window.show()

    def wait_for(signal, start) -> tuple[float, tuple]:  # noqa: ANN001
        loop, got = QEventLoop(), []

        def done(*values: object) -> None:  # connected after the window's own slot: runs after it
            got.append(values)
            loop.quit()

        signal.connect(done)
        started = time.perf_counter()
        start()
        loop.exec()
        signal.disconnect(done)
        return time.perf_counter() - started, got[0]

    load_seconds, _ = wait_for(worker.modelLoaded, lambda: window.load_model(str(model)))
    window.prompt_panel.set_preview_settings("fast", 1)
    rows = []
    for click in range(args.clicks):
        request = GenerationRequest(f"a red apple number {click}", seed=click, steps=args.steps, guidance=5)
        window.prompt_panel.set_request(request.replace(width=args.size, height=args.size))
        seconds, (update,) = wait_for(worker.jobFinished, window.generate)
        assert update.saved and window.create_page.results.count() == 1, "the image was not shown and saved"
        rows.append((seconds, update.result.elapsed))
    worker.shutdown()

    size = f"{args.size}x{args.size}"
    print(f"model: {model.name} (loaded in {load_seconds:.1f} s), {size}, {args.steps} steps, CFG 5")
    print(f"{'click':<7} {'click to shown s':>16} {'engine s':>9} {'app s':>7}")
    for click, (seconds, engine) in enumerate(rows, 1):
        print(f"{click:<7} {seconds:16.3f} {engine:9.3f} {seconds - engine:7.3f}")
    later = rows[1:] or rows
    median, engine = statistics.median(r[0] for r in later), statistics.median(r[1] for r in later)
    print(f"{'median*':<7} {median:16.3f} {engine:9.3f} {median - engine:7.3f}   (*clicks 2..{args.clicks})")
    app.processEvents()


if __name__ == "__main__":
    main()
