"""The GUI thread's event-loop latency while the worker loads a model and generates. Target: p99 < 50 ms.

    nice python3 bench/responsiveness.py [--model PATH] [--worker-threads 1,2] [--generations 5]

The real studio window (offscreen) over the real worker and engine. A QTimer fires every 10 ms on
the GUI thread; its lateness (interval - 10 ms) is the latency a click or a repaint would see.
Phases: idle; the first model load (the worker imports torch and diffusers then); generations of 20
steps with CFG and the Fast preview every step; generations cancelled after 3 steps. Each worker
thread count runs in its own process (torch's per-thread setting; the import happens once per
process); the s/step column shows what a count costs the generation.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

INTERVAL = 0.010


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(model_path: str | None, worker_threads: int, generations: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from ldm_studio.app.backend import TorchBackend
    from ldm_studio.app.session import Session
    from ldm_studio.app.settings import Settings
    from ldm_studio.app.worker import EngineWorker
    from ldm_studio.engine.request import GenerationRequest
    from ldm_studio.paths import user_dirs
    from ldm_studio.ui.main_window import MainWindow

    class Backend(TorchBackend):
        def _set_threads(self) -> None:  # the thread count under test instead of the app's policy
            import torch

            torch.set_num_threads(worker_threads)

    app = QApplication.instance() or QApplication([])
    scratch = Path(tempfile.mkdtemp())
    os.environ["LDM_STUDIO_HOME"] = str(scratch / "home")
    model_path = model_path or _prepared_model(scratch)
    worker = EngineWorker(Backend)
    window = MainWindow(Session(worker, Settings(), user_dirs().ensure()))
    window.show()

    lateness: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        lateness.append(max(0.0, now - last[0] - INTERVAL))
        last[0] = now

    probe = QTimer()
    probe.setTimerType(Qt.TimerType.PreciseTimer)
    probe.setInterval(round(INTERVAL * 1000))
    probe.timeout.connect(tick)

    def run_until(signal, count: int = 1, start=None) -> float:  # noqa: ANN001
        """Spin the event loop until ``signal`` fired ``count`` times; return the seconds it took."""
        loop, seen = QEventLoop(), [0]

        def seen_one(*_args: object) -> None:
            seen[0] += 1
            if seen[0] >= count:
                loop.quit()

        signal.connect(seen_one)
        started = time.perf_counter()
        if start is not None:
            start()
        loop.exec()
        signal.disconnect(seen_one)
        return time.perf_counter() - started

    def phase(name: str, action) -> tuple[str, list[float], float]:  # noqa: ANN001
        lateness.clear()
        last[0] = time.perf_counter()
        probe.start()
        seconds = action()
        probe.stop()
        return name, list(lateness), seconds

    results = [phase("idle (2 s)", lambda: _spin(2.0))]

    def first_load() -> float:
        return run_until(worker.modelLoaded, start=lambda: window.load_model(model_path))

    results.append(phase("first model load", first_load))
    request = GenerationRequest("a red apple", seed=1, steps=20, guidance=5)
    window.prompt_panel.set_request(request)
    window.prompt_panel.set_preview_settings("fast", 1)
    window.generate()  # warm-up generation, not measured
    run_until(worker.jobFinished)

    def generate_all() -> float:
        def start() -> None:
            for _ in range(generations):
                window.generate()

        return run_until(worker.jobFinished, generations, start=start)

    results.append(phase(f"{generations} generations", generate_all))

    def cancel_after_three(update) -> None:  # noqa: ANN001
        if update.index == 3:
            window.cancel()

    def cancel_all() -> float:
        seconds = 0.0
        for _ in range(generations):
            seconds += run_until(worker.jobCancelled, start=window.generate)
        return seconds

    worker.jobStep.connect(cancel_after_three)
    results.append(phase(f"{generations} cancelled at step 3", cancel_all))
    worker.jobStep.disconnect(cancel_after_three)
    worker.shutdown()

    per_step = results[2][2] / (generations * request.steps)
    print(
        f"worker threads {worker_threads} (GUI thread separate), {os.cpu_count()} CPUs; "
        f"generation {per_step * 1000:.0f} ms/step including the decode"
    )
    for name, samples, seconds in results:
        p50, p99, worst = (
            value * 1000 for value in (percentile(samples, 0.5), percentile(samples, 0.99), max(samples))
        )
        print(
            f"  {name:<26} {seconds:6.2f} s  ticks {len(samples):5d}  "
            f"lateness p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  max {worst:7.1f} ms  "
            f"over 50 ms: {sum(value > 0.05 for value in samples)}"
        )
    app.processEvents()


def _spin(seconds: float) -> float:
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(round(seconds * 1000), loop.quit)
    started = time.perf_counter()
    loop.exec()
    return time.perf_counter() - started


def _prepared_model(scratch: Path) -> str:
    from bench.models import bench_model

    return str(bench_model(None, scratch))


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--model")
    parser.add_argument("--worker-threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        measure(args.model, args.one, args.generations)
        return
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model or _prepared_model(Path(scratch))
        for threads in (int(value) for value in args.worker_threads.split(",")):
            command = [sys.executable, __file__, "--one", str(threads), "--model", model]
            subprocess.run([*command, "--generations", str(args.generations)], check=True)


if __name__ == "__main__":
    main()
