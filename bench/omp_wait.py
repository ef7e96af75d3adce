"""OpenMP's wait policy and torch's thread count, for one image of the bundled model (20 steps, CFG).

    nice python3 bench/omp_wait.py [--model PATH] [--repeats 5]

Each setting runs in its own process (OMP_WAIT_POLICY is read when torch loads): the default policy
(threads spin while they wait for work) against PASSIVE (they sleep), with 1 and 2 torch threads.
Run it on a quiet machine and again beside a busy process: spinning threads that share a core with
another job are what makes the default collapse.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHILD = """
import json, sys, time, torch
torch.set_num_threads({threads})
from ldm_studio.engine.loader import load_model
from ldm_studio.engine.generate import generate
from ldm_studio.engine.request import GenerationRequest
model = load_model({model!r})
request = GenerationRequest("penguin", seed=3, steps=20, guidance=5)
generate(model, request)  # warm-up
times = []
for _ in range({repeats}):
    started = time.perf_counter()
    generate(model, request)
    times.append(time.perf_counter() - started)
print("RESULT", json.dumps(times))
"""


def run(policy: str | None, threads: int, model: str, repeats: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    code = CHILD.format(threads=threads, model=model, repeats=repeats)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT")), None)
    if line is None:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(line.removeprefix("RESULT "))


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--model", default=str(REPO / "resources" / "models" / "emoji-ldm"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for threads in (1, 2):
        for policy in (None, "PASSIVE"):
            times = run(policy, threads, args.model, args.repeats)
            rows.append((policy or "default (active)", threads, statistics.median(times), max(times)))
    base = rows[0][2]
    print(f"{'OMP_WAIT_POLICY':<18} {'threads':>7} {'median s':>9} {'worst s':>8} {'vs first':>8}")
    for policy, threads, median, worst in rows:
        print(f"{policy:<18} {threads:>7} {median:9.3f} {worst:8.3f} {median / base:8.2f}")


if __name__ == "__main__":
    main()
