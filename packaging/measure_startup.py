"""How fast LDM Studio starts: the stand-alone build against the source checkout, in the same run.

Needs an X display and ``xwininfo`` (Debian: x11-utils), e.g. a virtual one:

    Xvfb :88 -screen 0 1400x900x24 &
    DISPLAY=:88 python3 packaging/measure_startup.py --runs 3

For each way of starting it prints the median of ``--runs`` timings (after one warm-up run) of
``--version`` (interpreter and command line), of the time until the main window is mapped on screen,
and, when a bundled model exists or ``--model`` names one, of a whole ``generate`` run (start,
model load, 20 steps).
Every run gets a fresh LDM_STUDIO_HOME, as on a first start. The source checkout runs from the
repository with the current Python; the build runs from a temporary folder without PYTHONPATH.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WINDOW_LINE = re.compile(r'^\s*(0x[0-9a-f]+) "LDM Studio": \(.*?\)\s+(\d+)x(\d+)', re.MULTILINE)


def main_window_mapped() -> bool:
    tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True).stdout
    for window, width, height in WINDOW_LINE.findall(tree):
        if int(width) > 200 and int(height) > 200:
            info = subprocess.run(["xwininfo", "-id", window], capture_output=True, text=True).stdout
            if "IsViewable" in info:
                return True
    return False


def environment(home: Path, frozen: bool) -> dict[str, str]:
    env = {**os.environ, "LDM_STUDIO_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("QT_QPA_PLATFORM", None)  # a real (virtual) display, not offscreen
    if frozen:
        env.pop("PYTHONPATH", None)
    return env


def time_window(command: list[str], cwd: Path, frozen: bool, timeout: float = 120.0) -> float:
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, env=environment(Path(home), frozen), stdout=subprocess.DEVNULL, stderr=errors
        )
        try:
            while not main_window_mapped():
                if process.poll() is not None:
                    errors.seek(0)
                    raise RuntimeError(
                        f"{command[0]} exited with status {process.returncode} before showing a window:\n"
                        + errors.read().decode(errors="replace")[-2000:]
                    )
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"no window within {timeout:.0f} s")
                time.sleep(0.1)
            return time.perf_counter() - started
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def time_window_retrying(command: list[str], cwd: Path, frozen: bool, attempts: int = 3) -> float:
    """Xvfb now and then refuses a connection while xwininfo polls it; such a run is repeated."""
    for attempt in range(attempts):
        try:
            return time_window(command, cwd, frozen)
        except RuntimeError as error:
            if "could not connect to display" not in str(error) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def time_command(command: list[str], cwd: Path, frozen: bool) -> float:
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=environment(Path(home), frozen), check=True, capture_output=True)
        return time.perf_counter() - started


def median_of(runs: int, measure) -> float:
    measure()  # warm-up: fills the page cache, as on any start after the first
    return statistics.median(measure() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", type=Path, default=REPO / "dist" / "ldm-studio" / "ldm-studio")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", type=Path, help="model for the generate timing (default: the bundled one)")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        sys.exit("measure_startup.py: set DISPLAY (see the module docstring)")

    outside = Path(tempfile.mkdtemp(prefix="ldm-studio-measure-"))
    ways = {
        "stand-alone build": ([str(args.app.resolve())], outside, True),
        "source checkout": ([sys.executable, "-m", "ldm_studio"], REPO, False),
    }
    model = ["--model", str(args.model.resolve())] if args.model else []
    has_model = bool(model) or any((REPO / "resources" / "models").glob("*/model_index.json"))
    results: dict[str, dict[str, float]] = {}
    for name, (command, cwd, frozen) in ways.items():
        results[name] = {
            "--version": median_of(args.runs, partial(time_command, [*command, "--version"], cwd, frozen)),
            "window on screen": median_of(args.runs, partial(time_window_retrying, command, cwd, frozen)),
        }
        if has_model:
            generate = [*command, "generate", *model, "--prompt", "red heart", "--seed", "1"]
            generate += ["--out", str(outside / "out")]
            results[name]["generate (20 steps)"] = median_of(
                args.runs, partial(time_command, generate, cwd, frozen)
            )
    build, source = results["stand-alone build"], results["source checkout"]
    print(f"median of {args.runs} runs after one warm-up; {os.cpu_count()} CPUs")
    print(f"{'':36} {'build':>8} {'source':>8} {'ratio':>6}")
    for measure in build:
        ratio = build[measure] / source[measure]
        print(f"{measure:36} {build[measure]:7.2f}s {source[measure]:7.2f}s {ratio:6.2f}")
    if not has_model:
        print("(no bundled model in resources/models: generation not measured)")


if __name__ == "__main__":
    main()
