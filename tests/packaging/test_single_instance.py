import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from PySide6.QtNetwork import QLocalServer

from ldm_studio.app.single_instance import InstanceGuard, default_server_name

REPO = Path(__file__).resolve().parents[2]

# A second launch in its own process, as in real life: it blocks while asking, so the first
# instance (this test process) must keep its event loop running to answer.
SECOND_LAUNCH = """
import json, sys
from PySide6.QtCore import QCoreApplication
from ldm_studio.app.single_instance import InstanceGuard
app = QCoreApplication([])
claim = InstanceGuard(sys.argv[1]).claim({"model": sys.argv[2]}, timeout_ms=10000)
print(json.dumps({"primary": claim.primary, "answered": claim.answered, "message": claim.message}))
"""

# An instance that takes the name and then dies without cleaning up, like a crash.
CRASHING_INSTANCE = """
import os, signal, sys
from PySide6.QtCore import QCoreApplication
from ldm_studio.app.single_instance import InstanceGuard
app = QCoreApplication([])
guard = InstanceGuard(sys.argv[1])
assert guard.claim().primary
print(guard.server.fullServerName(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def unique_name() -> str:
    return f"ldm-studio-test-{uuid.uuid4().hex[:12]}"


def run_child(script: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )


@pytest.fixture
def guards():
    made = []
    yield made
    for guard in made:
        guard.release()


def test_second_launch_asks_the_first_to_come_forward(qtbot, guards):
    name = unique_name()
    first = InstanceGuard(name)
    guards.append(first)
    assert first.claim().primary
    requests = []
    first.activationRequested.connect(requests.append)

    child = run_child(SECOND_LAUNCH, name, "/models/cat.safetensors")
    qtbot.waitUntil(lambda: child.poll() is not None, timeout=30000)  # keeps the event loop turning
    out, err = child.communicate()
    assert child.returncode == 0, err
    second = json.loads(out)
    assert second["primary"] is False and second["answered"] is True
    assert "already running" in second["message"]
    assert len(requests) == 1
    assert requests[0]["model"] == "/models/cat.safetensors"
    assert requests[0]["pid"] == child.pid


def test_two_names_do_not_interfere(guards):
    first, other = InstanceGuard(unique_name()), InstanceGuard(unique_name())
    guards += [first, other]
    assert first.claim().primary
    assert other.claim(timeout_ms=500).primary
    assert first.server.isListening() and other.server.isListening()


def test_socket_left_by_a_crashed_instance_is_taken_over(qtbot, guards):
    name = unique_name()
    child = run_child(CRASHING_INSTANCE, name)
    out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err
    leftover = Path(out.strip())
    assert leftover.exists()  # the crash really left its socket behind

    guard = InstanceGuard(name)
    guards.append(guard)
    claim = guard.claim(timeout_ms=1000)
    assert claim.primary and claim.message == ""
    assert guard.server.isListening()


def test_an_instance_that_does_not_answer_is_reported(qtbot):
    name = unique_name()
    silent = QLocalServer()  # accepts connections but never replies, like a hung instance
    assert silent.listen(name)
    try:
        claim = InstanceGuard(name).claim(timeout_ms=300)
    finally:
        silent.close()
    assert claim.primary is False and claim.answered is False
    assert "did not answer" in claim.message


def test_released_guard_frees_the_name(guards):
    name = unique_name()
    first = InstanceGuard(name)
    assert first.claim().primary
    first.release()
    again = InstanceGuard(name)
    guards.append(again)
    assert again.claim(timeout_ms=500).primary


def test_server_name_depends_on_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LDM_STUDIO_HOME", str(tmp_path / "a"))
    first = default_server_name()
    assert default_server_name() == first
    monkeypatch.setenv("LDM_STUDIO_HOME", str(tmp_path / "b"))
    assert default_server_name() != first
