"""Hires fix on an SD 1.5-sized model (random weights, fp32): seconds for 512 -> 1024 with a latent
and a Lanczos upscale against a direct 1024 generation with as many steps, in one run, interleaved.

    nice python3 bench/hires_fix.py [--first 1] [--hires 1] [--strength 0.5] [--rounds 1]

The direct run gets first + hires steps at 1024², so every variant runs the same number of UNet
steps; hires fix saves by running its first ones at a quarter of the pixels. Lanczos adds a 512²
decode and a 1024² encode. Weights are random: only the shapes matter for time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sd15_size import build_pipeline, loaded_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--first", type=int, default=1, help="first-pass steps")
    parser.add_argument("--hires", type=int, default=1, help="hires steps")
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated variant names to run (default: all), e.g. 'Lanczos,direct'",
    )
    args = parser.parse_args()

    import torch

    from ldm_studio.engine.events import Finished, Step
    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.hires_request import HiresFix
    from ldm_studio.engine.preview import PreviewSettings
    from ldm_studio.engine.request import GenerationRequest

    model = loaded_model(build_pipeline())
    base = GenerationRequest("a red apple on a wooden table", seed=1, guidance=7.0, sampler="Euler")
    big = args.size * 2
    variants = {
        "hires Latent": base.replace(
            steps=args.first,
            width=args.size,
            height=args.size,
            hires=HiresFix(2.0, steps=args.hires, strength=args.strength, upscaler="Latent"),
        ),
        "hires Lanczos": base.replace(
            steps=args.first,
            width=args.size,
            height=args.size,
            hires=HiresFix(2.0, steps=args.hires, strength=args.strength, upscaler="Lanczos"),
        ),
        f"direct {big}": base.replace(steps=args.first + args.hires, width=big, height=big),
    }
    if args.only:
        wanted = [word.strip().lower() for word in args.only.split(",")]
        variants = {name: r for name, r in variants.items() if any(word in name.lower() for word in wanted)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"CPU {torch.backends.cpu.get_cpu_capability()}; {args.size}->{big}, first {args.first} + "
        f"hires {args.hires} steps (strength {args.strength}), direct {args.first + args.hires} steps",
        flush=True,
    )
    for round_ in range(args.rounds):
        for name, request in variants.items():  # interleaved: A B C A B C …
            steps: list[float] = []
            started = time.perf_counter()
            result = generate(
                model,
                request,
                lambda e, steps=steps: steps.append(e.elapsed) if isinstance(e, Step) else None,
                preview=PreviewSettings("off"),
            )
            seconds = time.perf_counter() - started
            if not isinstance(result, Finished):
                raise SystemExit(f"{name} did not finish: {result}")
            times[name].append(seconds)
            print(
                f"round {round_ + 1} {name:14s} {seconds:7.1f} s  image {result.images[0].size}  "
                f"step ends at {', '.join(f'{s:.1f}' for s in steps)} s",
                flush=True,
            )
    direct = statistics.median(times[f"direct {big}"]) if times.get(f"direct {big}") else None
    for name, values in times.items():
        median = statistics.median(values)
        ratio = f"  x{median / direct:.2f} of direct {big}" if direct else ""
        print(f"{name:14s} median {median:7.1f} s{ratio}")


if __name__ == "__main__":
    main()
