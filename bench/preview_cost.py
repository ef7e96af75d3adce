"""What each live-preview mode costs per denoising step, against previews off, in one run.

python3 bench/preview_cost.py [--model PATH] [--steps 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.models import bench_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sampler", default="Euler a")
    args = parser.parse_args()

    import torch

    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.loader import load_model
    from ldm_studio.engine.preview import PreviewSettings
    from ldm_studio.engine.request import GenerationRequest

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as scratch:
        model = load_model(bench_model(args.model, Path(scratch)), device="cpu")
        request = GenerationRequest("a red apple", seed=1, steps=args.steps, sampler=args.sampler, guidance=5)
        modes = {
            "off": PreviewSettings("off"),
            "fast (every step)": PreviewSettings("fast"),
            "full (every step)": PreviewSettings("full", every=1),
            "full (every 5 steps)": PreviewSettings("full", every=5),
        }
        generate(model, request, preview=modes["off"])  # warm-up: first-call allocations, caches
        timings: dict[str, list[float]] = {name: [] for name in modes}
        for _ in range(args.repeats):
            for name, settings in modes.items():  # interleaved, so drift hits every mode alike
                started = time.perf_counter()
                generate(model, request, preview=settings)
                timings[name].append(time.perf_counter() - started)
    size = f"{model.native_size}x{model.native_size}"
    print(
        f"model: {model.name} ({size}), sampler {args.sampler}, {args.steps} steps, CFG, {args.repeats} runs"
    )
    baseline = statistics.median(timings["off"]) / args.steps
    print(f"{'preview mode':<22} {'ms/step':>9} {'extra ms/step':>14} {'ratio':>7}")
    for name, values in timings.items():
        per_step = statistics.median(values) / args.steps
        extra_ms = (per_step - baseline) * 1000
        print(f"{name:<22} {per_step * 1000:9.2f} {extra_ms:14.2f} {per_step / baseline:7.3f}")


if __name__ == "__main__":
    main()
