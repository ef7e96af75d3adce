"""LDM Studio's generation loop against a bare diffusers pipeline call on the same model, sampler, steps
and seed, in the same process, runs interleaved. Targets: ratio <= 1.03 with previews off, <= 1.10
with the Fast preview every step.

    nice python3 bench/engine_overhead.py [--model PATH] [--steps 20] [--repeats 5] [--sampler "Euler a"]

Rows: the bare pipeline; ``generate`` with previews off; with the Fast preview every step; and with
the Fast preview plus the kept trajectory, which is what the window runs (app.backend.TorchBackend
passes keep_trajectory=True). Both sides decode and return PIL images, in float32 (the model is
loaded with dtype="float32", so no bf16 autocast). The images must be identical: the max pixel
difference is printed.
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sampler", default="Euler a")
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.loader import load_model
    from ldm_studio.engine.preview_settings import PreviewSettings
    from ldm_studio.engine.request import GenerationRequest
    from ldm_studio.engine.samplers import make_scheduler

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        # float32 on both sides: this measures the loop's overhead, not a precision choice
        model = load_model(bench_model(args.model, Path(scratch)), device="cpu", dtype="float32")
    size = model.native_size
    request = GenerationRequest(
        "a red apple",
        seed=1,
        steps=args.steps,
        sampler=args.sampler,
        guidance=args.guidance,
        width=size,
        height=size,
    )
    pipe = model.pipe
    bare_scheduler = make_scheduler(args.sampler, model.base_scheduler_config)

    def bare():  # noqa: ANN202
        pipe.scheduler = bare_scheduler
        generator = torch.Generator("cpu").manual_seed(request.seed)
        return pipe(
            request.prompt,
            height=size,
            width=size,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            generator=[generator],
            output_type="pil",
        ).images[0]

    def ours(preview: str, keep: bool = False):  # noqa: ANN202
        def run():  # noqa: ANN202
            return generate(model, request, preview=PreviewSettings(preview), keep_trajectory=keep).images[0]

        return run

    runs = {
        "bare diffusers pipeline": bare,
        "generate, previews off": ours("off"),
        "generate, Fast preview": ours("fast"),
        "generate, Fast + trajectory": ours("fast", keep=True),
    }
    images = {name: run() for name, run in runs.items()}  # warm-up, and the images to compare
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():  # interleaved: drift on a shared CPU hits every row alike
            started = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - started)

    reference = np.asarray(images["bare diffusers pipeline"], dtype=np.int16)
    baseline = statistics.median(timings["bare diffusers pipeline"])
    print(
        f"model: {model.name} ({size}x{size}), {args.sampler}, {args.steps} steps, CFG {args.guidance}, "
        f"{args.repeats} interleaved runs, {torch.get_num_threads()} threads"
    )
    print(f"{'run':<30} {'median s':>9} {'min s':>7} {'ms/step':>8} {'ratio':>6} {'max px diff':>11}")
    for name, values in timings.items():
        median = statistics.median(values)
        difference = int(np.abs(np.asarray(images[name], dtype=np.int16) - reference).max())
        print(
            f"{name:<30} {median:9.3f} {min(values):7.3f} {median / args.steps * 1000:8.1f} "
            f"{median / baseline:6.3f} {difference:11d}"
        )


if __name__ == "__main__":
    main()
