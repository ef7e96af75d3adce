"""Issue 17's Figures table: seconds from request to image and peak RSS on the SD 1.5-sized random
model (bench/sd15_size.py) at 512x512, through LDM Studio's engine (``engine.generate``), for

  20 steps, Euler a, CFG 7          today's default request
  4 steps, LCM, CFG 1               an LCM / LCM-LoRA model: one UNet pass per step
  4 steps, LCM, CFG 1, tiny decoder the same, final decode by an AutoencoderTiny (TAESD-sized)
  1 step, Euler a, CFG 1            Turbo-style (SD-Turbo: 1 step, no CFG)

each in its own subprocess (so each peak RSS is its own), on the precision path "auto" picks on this
CPU (engine.cpu_speed). Then, in one more process, the per-step cost of our engine against a bare
diffusers pipeline on the new path (LCM, CFG 1, same weights, same layout and autocast), interleaved.

    nice python3 bench/few_step.py [--size 512] [--overhead-repeats 2] [--only NAME]

Random weights: only the shapes matter for time and memory; the images are noise. The tiny decoder
has random weights too (diffusers' default AutoencoderTiny config is TAESD's shape).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VARIANTS = {
    "20 steps Euler a, CFG 7": {"steps": 20, "sampler": "Euler a", "guidance": 7.0, "tiny": False},
    "4 steps LCM, CFG 1": {"steps": 4, "sampler": "LCM", "guidance": 1.0, "tiny": False},
    "4 steps LCM, CFG 1, tiny decoder": {"steps": 4, "sampler": "LCM", "guidance": 1.0, "tiny": True},
    "1 step Euler a, CFG 1 (Turbo-style)": {"steps": 1, "sampler": "Euler a", "guidance": 1.0, "tiny": False},
}
PROMPT = "a red apple on a wooden table"


def engine_model(pipe):  # noqa: ANN001, ANN201
    """The in-memory pipeline as the engine holds a loaded model, laid out as load_model lays it out."""
    import numpy as np

    from bench.sd15_size import loaded_model
    from ldm_studio.engine.cpu_speed import apply_layout, cpu_speed_plan, unet_width
    from ldm_studio.engine.preview import LatentProjection

    plan = cpu_speed_plan("cpu", "auto", unet_width(pipe))
    apply_layout(pipe, plan)
    projection = LatentProjection(np.eye(4, 3, dtype=np.float32), np.zeros(3, dtype=np.float32))
    model = loaded_model(pipe, projection)
    return model, plan


def tiny_decoder_folder() -> str:
    """A random-weight AutoencoderTiny (TAESD's shape) saved as a diffusers folder: the request's
    ``decoder`` field names it, as a user's installed TAESD would be named."""
    import tempfile

    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(2)
    folder = Path(tempfile.mkdtemp(prefix="bench-taesd-")) / "taesd"
    AutoencoderTiny().eval().save_pretrained(folder)
    return str(folder)


def run_variant(name: str, size: int) -> dict:
    import torch

    from bench.sd15_size import build_pipeline
    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.preview import PreviewSettings
    from ldm_studio.engine.request import GenerationRequest
    from ldm_studio.engine.tiny_decoding import DRAFT_RECORD_KEY

    spec = VARIANTS[name]
    torch.set_grad_enabled(False)
    pipe = build_pipeline()
    decoder = tiny_decoder_folder() if spec["tiny"] else ""
    model, plan = engine_model(pipe)
    warm = GenerationRequest(
        PROMPT, seed=0, steps=1, guidance=1.0, sampler=spec["sampler"], width=64, height=64
    )
    generate(model, warm, preview=PreviewSettings("off"))  # first-call set-up is not a click's cost
    request = GenerationRequest(
        PROMPT,
        seed=1,
        steps=spec["steps"],
        guidance=spec["guidance"],
        sampler=spec["sampler"],
        width=size,
        height=size,
        decoder=decoder,
    )
    started = time.perf_counter()
    result = generate(model, request, preview=PreviewSettings("fast"))
    seconds = time.perf_counter() - started
    if type(result).__name__ != "Finished":
        raise RuntimeError(f"{name}: {result}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "name": name,
        "seconds": seconds,
        "peak_rss": peak,
        "decoder": (result.metadata.get(DRAFT_RECORD_KEY) or {}).get("layout", "VAE") if decoder else "VAE",
        "path": plan.label or "float32",
        "precision": result.metadata.get("precision", ""),
    }


def overhead(size: int, repeats: int, steps: int = 3) -> dict:
    """Per-step seconds: bare diffusers pipeline vs our engine, LCM, CFG 1, same in-memory weights."""
    import torch
    from diffusers import LCMScheduler

    from bench.sd15_size import StepClock, build_pipeline
    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.preview import PreviewSettings
    from ldm_studio.engine.request import GenerationRequest
    from ldm_studio.engine.samplers import make_scheduler

    torch.set_grad_enabled(False)
    pipe = build_pipeline()
    model, plan = engine_model(pipe)
    clock = StepClock(pipe)
    bare_scheduler = make_scheduler("LCM", model.base_scheduler_config)
    assert isinstance(bare_scheduler, LCMScheduler)

    def bare() -> None:
        pipe.scheduler = bare_scheduler
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=plan.bf16_autocast):
            pipe(
                PROMPT,
                num_inference_steps=steps,
                guidance_scale=1.0,
                height=size,
                width=size,
                generator=torch.Generator().manual_seed(1),
                output_type="np",
            )

    def ours() -> None:
        request = GenerationRequest(
            PROMPT, seed=1, steps=steps, guidance=1.0, sampler="LCM", width=size, height=size
        )
        result = generate(model, request, preview=PreviewSettings("fast"))
        assert type(result).__name__ == "Finished", result

    per_step: dict[str, list[float]] = {"bare diffusers pipeline": [], "LDM Studio engine": []}
    for _ in range(repeats):
        for label, run in (("bare diffusers pipeline", bare), ("LDM Studio engine", ours)):
            clock.reset()
            run()
            per_step[label].extend(clock.steps()[1:])  # the first step carries autocast's weight casts
            print(f"  {label}: {[round(s, 2) for s in clock.steps()]}", file=sys.stderr, flush=True)
    medians = {label: statistics.median(values) for label, values in per_step.items()}
    return {"medians": medians, "steps": steps, "repeats": repeats, "path": plan.label or "float32"}


def child(args: argparse.Namespace) -> None:
    out = run_variant(args.variant, args.size) if args.variant else overhead(args.size, args.overhead_repeats)
    print("RESULT " + json.dumps(out), flush=True)


def spawn(extra: list[str]) -> dict:
    command = [sys.executable, __file__, *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    raise RuntimeError(f"{' '.join(extra)} failed:\n{done.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--overhead-repeats", type=int, default=2)
    parser.add_argument("--only", choices=[*VARIANTS, "overhead"])
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--overhead-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant or args.overhead_child:
        child(args)
        return

    import torch

    print(
        f"SD 1.5-sized random model, {args.size}x{args.size}, torch {torch.__version__}, capability "
        f"{torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    results = []
    for name in VARIANTS:
        if args.only in (None, name):
            results.append(spawn(["--variant", name, "--size", str(args.size)]))
            print(f"  {results[-1]}", flush=True)
    base = next((r["seconds"] for r in results if r["name"].startswith("20 steps")), None)
    print(f"\n{'variant':<40}{'request→image s':>16}{'vs 20 steps':>12}{'peak RSS GB':>12}  path / decoder")
    for r in results:
        speedup = f"{base / r['seconds']:.1f}x" if base else "-"
        print(
            f"{r['name']:<40}{r['seconds']:16.1f}{speedup:>12}{r['peak_rss'] / 1e9:12.2f}  "
            f"{r['path']} / {r['decoder']} / metadata precision: {r['precision']}"
        )
    if args.only in (None, "overhead"):
        found = spawn(
            ["--overhead-child", "--size", str(args.size), "--overhead-repeats", str(args.overhead_repeats)]
        )
        bare, ours = found["medians"]["bare diffusers pipeline"], found["medians"]["LDM Studio engine"]
        print(
            f"\nper-step, LCM CFG 1 ({found['path']}), median of {found['repeats']}x{found['steps'] - 1} "
            f"steps interleaved: bare {bare:.2f} s, ours {ours:.2f} s, ratio {ours / bare:.3f}"
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
