"""Closing in the middle of things: the window's ✕ during a generation, SIGTERM and Ctrl+C to the app.

"Clean" here means: the running generation is cancelled and saves nothing, the worker thread ends
(no thread left behind), the settings are saved whole, the gallery index is intact, no half-written
file anywhere, a log line says why it closed, and the exit status is 0 (not a signal, not an abort).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from ldm_studio.app.backend import TorchBackend
from ldm_studio.app.saving import save_finished
from ldm_studio.app.session import Session
from ldm_studio.app.settings import SETTINGS_FILE, Settings
from ldm_studio.app.worker import EngineWorker
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.store import GalleryStore
from ldm_studio.paths import user_dirs
from ldm_studio.ui.main_window import MainWindow

REPO = Path(__file__).resolve().parents[2]
LONG_REQUEST = GenerationRequest("a long one", seed=1, steps=200, batch_size=4)
# Generous bounds that only catch a hang: a clean close takes well under a second here.
START_TIMEOUT = 120.0
EXIT_TIMEOUT = 20.0


def leftovers(root: Path) -> list[Path]:
    """Files a clean exit must not leave: half-written images or settings, name claims."""
    suspicious = (".part", ".tmp", ".claim")
    return [path for path in root.rglob("*") if path.is_file() and path.name.endswith(suspicious)]


def index_is_intact(database: Path) -> bool:
    with sqlite3.connect(database) as connection:
        return connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_closing_the_window_during_a_generation_stops_everything(qtbot, tiny_sd_folder, tmp_path):
    threads_before = set(threading.enumerate())
    dirs = user_dirs().ensure()
    gallery = GalleryStore(tmp_path / "gallery")
    worker = EngineWorker(TorchBackend, lambda result: save_finished(gallery, result))
    window = MainWindow(Session(worker, Settings(), dirs))
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(worker.modelLoaded, timeout=60_000):
        window.load_model(str(tiny_sd_folder))
    window.prompt_panel.set_request(LONG_REQUEST)
    with qtbot.waitSignal(worker.jobStep, timeout=60_000):
        window.generate()

    window.close()

    assert not worker.is_alive
    assert [thread for thread in threading.enumerate() if thread not in threads_before] == []
    assert not gallery.root.exists() or list(gallery.root.rglob("*.png")) == []
    assert leftovers(tmp_path) == []
    saved = json.loads((dirs.config / SETTINGS_FILE).read_text(encoding="utf-8"))
    assert saved["last_request"]["prompt"] == "a long one"


def start_app(args: list[str], home: Path) -> subprocess.Popen:
    env = {**os.environ, "LDM_STUDIO_HOME": str(home), "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def log_text(home: Path) -> str:
    log_file = home / "logs" / "ldm-studio.log"
    return log_file.read_text(encoding="utf-8") if log_file.exists() else ""


def wait_for(condition, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the app exited before {what}: {process.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the app never reached {what}")
        time.sleep(0.1)


def stop_and_check(process: subprocess.Popen, home: Path, number: signal.Signals) -> str:
    process.send_signal(number)
    try:
        _out, errors = process.communicate(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"the app was still running {EXIT_TIMEOUT} s after {number.name}") from None
    log = log_text(home)
    assert process.returncode == 0, errors[-2000:]
    assert "Traceback" not in errors and "Traceback" not in log
    assert f"{number.name} received" in log and log.rstrip().endswith("LDM Studio closed")
    json.loads((home / "config" / SETTINGS_FILE).read_text(encoding="utf-8"))  # whole, not truncated
    assert leftovers(home) == []
    assert index_is_intact(home / "data" / "gallery.sqlite3")
    return log


def test_ctrl_c_closes_the_app_cleanly(tiny_sd_folder, tmp_path):
    home = tmp_path / "home"
    process = start_app(["-m", "ldm_studio", "--model", str(tiny_sd_folder)], home)
    wait_for(lambda: "model ready" in log_text(home), process, "a loaded model")
    log = stop_and_check(process, home, signal.SIGINT)
    assert "did not stop" not in log and "still busy" not in log
    settings = json.loads((home / "config" / SETTINGS_FILE).read_text(encoding="utf-8"))
    assert settings["last_model"] == str(tiny_sd_folder)


def test_sigterm_in_a_step_longer_than_the_close_timeout_still_exits_cleanly(tiny_sd_folder, tmp_path):
    """An SD 1.5 step on a CPU takes ~10 s, longer than the window waits for the worker on close."""
    home = tmp_path / "home"
    process = start_app(["-m", "tests.faults.generating_app", str(tiny_sd_folder), "--slow"], home)
    first_line: list[str] = []
    reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline()), daemon=True)
    reader.start()
    wait_for(lambda: bool(first_line), process, "the first denoising step")
    assert first_line[0].strip() == "GENERATING"
    stop_and_check(process, home, signal.SIGTERM)
    assert list(home.rglob("*.png")) == []  # the cancelled generation saved nothing
