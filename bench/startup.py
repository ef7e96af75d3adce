"""Start-up: from launching ``ldm-studio`` to the window painted, and to the default model ready.
Targets on a 2-core machine: window < 1.5 s, bundled model ready < 5 s.

    nice python3 bench/startup.py [--model PATH] [--runs 3]

Each run starts ``python -m ldm_studio --model PATH`` (offscreen, a fresh LDM_STUDIO_HOME) and reads
the times of the log lines "window painted" and "model ready: …" (ui/launch.py writes them) against
the moment the process was spawned, then closes it with SIGTERM. The first run is the coldest (file
cache, the preview-projection cache is empty); the others show a warm start. One more run records
which heavy modules the GUI thread had imported by the time it handed the model load to the worker
(the window is shown before that): torch, diffusers and transformers must not be among them.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.models import bench_model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "diffusers", "transformers", "numpy", "scipy", "PIL", "safetensors")
LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ \S+ \S+: (.*)$")
PROBE = """
import sys
from ldm_studio.app import worker

start = worker.EngineWorker.start

def start_and_report(self):
    if not self._started:
        loaded = [name for name in {heavy!r} if name in sys.modules]
        print("IMPORTED BY THE GUI THREAD BEFORE THE WORKER STARTED:", *loaded or ["none"], flush=True)
    start(self)

worker.EngineWorker.start = start_and_report
from ldm_studio.__main__ import main
sys.exit(main(["--model", {model!r}]))
"""


def log_times(log_file: Path) -> dict[str, float]:
    """Epoch seconds of the start-up log lines, keyed by their first words."""
    times = {}
    for line in log_file.read_text(encoding="utf-8").splitlines():
        match = LINE.match(line)
        if not match:
            continue
        stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        message = match.group(2)
        for key in ("LDM Studio", "window painted", "model ready"):
            if message.startswith(key) and key not in times:
                times[key] = stamp
    return times


def launch(args: list[str], home: Path, timeout: float = 300.0) -> tuple[float, dict[str, float], str]:
    env = {**os.environ, "LDM_STUDIO_HOME": str(home), "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}
    spawned = time.time()
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    log_file = home / "logs" / "ldm-studio.log"
    deadline = time.monotonic() + timeout
    times: dict[str, float] = {}
    while time.monotonic() < deadline and process.poll() is None:
        times = log_times(log_file) if log_file.exists() else {}
        if "model ready" in times:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    return spawned, times, output


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--model")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        model = str(bench_model(args.model, Path(scratch)))
        rows = []
        for run in range(args.runs):
            spawned, times, _ = launch(["-m", "ldm_studio", "--model", model], Path(scratch) / f"home{run}")
            rows.append(
                (
                    times.get("LDM Studio", float("nan")) - spawned,
                    times.get("window painted", float("nan")) - spawned,
                    times.get("model ready", float("nan")) - spawned,
                )
            )
        _, _, output = launch(["-c", PROBE.format(heavy=HEAVY, model=model)], Path(scratch) / "probe")

    print(f"model: {model}")
    print(f"{'run':<6} {'first log line s':>16} {'window painted s':>17} {'model ready s':>14}")
    for run, (logged, painted, ready) in enumerate(rows, 1):
        print(f"{run:<6} {logged:16.2f} {painted:17.2f} {ready:14.2f}")
    print(
        f"{'median':<6} {statistics.median(r[0] for r in rows):16.2f} "
        f"{statistics.median(r[1] for r in rows):17.2f} {statistics.median(r[2] for r in rows):14.2f}"
    )
    probe = [line for line in output.splitlines() if line.startswith("IMPORTED")]
    print(probe[0] if probe else "probe: the worker never started")


if __name__ == "__main__":
    main()
