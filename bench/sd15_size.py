"""An SD 1.5-sized model (UNet, VAE and CLIP-L from resources/configs/sd1) with random weights, built
in memory: seconds per denoising step at 512x512 with CFG, and peak memory, fp32, for a bare
diffusers pipeline and for LDM Studio's engine on the same weights, in one run.

    nice python3 bench/sd15_size.py [--steps 2] [--size 512] [--threads N]

Weights are random (nothing is downloaded); only the shapes matter for speed and memory. Peak
memory is the process RSS sampled every 10 ms; "working" is the peak above the RSS just before
the phase (the resident weights).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PAGE = os.sysconf("SC_PAGE_SIZE")
GB = 1e9


class RssSampler:
    """Peak resident memory (Linux /proc) within a phase, sampled in a background thread."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current() -> int:
        with open("/proc/self/statm") as stream:
            return int(stream.read().split()[1]) * PAGE

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(0.01)

    def __enter__(self) -> RssSampler:
        self.start = self.current()
        self.peak = self.start
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


class StepClock:
    """Step durations from UNet call starts to the next call (the last: to the VAE decode)."""

    def __init__(self, pipe) -> None:  # noqa: ANN001
        self.marks: list[float] = []
        self.decode_start = 0.0
        pipe.unet.register_forward_pre_hook(lambda *_: self.marks.append(time.perf_counter()))
        pipe.vae.decoder.register_forward_pre_hook(
            lambda *_: setattr(self, "decode_start", time.perf_counter())
        )

    def reset(self) -> None:
        self.marks, self.decode_start = [], 0.0

    def steps(self) -> list[float]:
        ends = self.marks[1:] + [self.decode_start]
        return [end - start for start, end in zip(self.marks, ends, strict=True)]


# FACTS.md's published SD 1.x latent -> RGB factors (one row per latent channel)
SD1_PREVIEW_FACTORS = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)


def build_pipeline():  # noqa: ANN201
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from ldm_studio.paths import resource

    def config(component: str, name: str = "config.json") -> dict:
        data = json.loads(resource("configs", "sd1", component, name).read_text(encoding="utf-8"))
        return {key: value for key, value in data.items() if not key.startswith("_")}

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**config("unet"))
    vae = AutoencoderKL(**config("vae"))
    text_encoder = CLIPTextModel(CLIPTextConfig(**config("text_encoder")))
    tokenizer = CLIPTokenizer(
        str(resource("tokenizers", "clip", "vocab.json")),
        str(resource("tokenizers", "clip", "merges.txt")),
        pad_token="<|endoftext|>",
        model_max_length=77,
    )
    scheduler = EulerDiscreteScheduler.from_config(config("scheduler", "scheduler_config.json"))
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_bare(pipe, args, clock):  # noqa: ANN001, ANN201
    import torch

    started = time.perf_counter()
    pipe(
        "a red apple on a wooden table",
        num_inference_steps=args.steps,
        guidance_scale=7.0,
        height=args.size,
        width=args.size,
        generator=torch.Generator().manual_seed(1),
        output_type="np",
    )
    return time.perf_counter() - started


def loaded_model(pipe, projection=None):  # noqa: ANN001, ANN201
    """The in-memory pipeline as the engine holds a loaded model; the Fast preview uses FACTS.md's
    published SD 1.x factors unless ``projection`` is given (fitting them to a random VAE would only
    cost time here)."""
    import numpy as np
    import torch

    from ldm_studio.engine.device import Placement
    from ldm_studio.engine.loader import LoadedModel
    from ldm_studio.engine.preview import LatentProjection

    if projection is None:
        weights = np.array(SD1_PREVIEW_FACTORS, dtype=np.float32)
        projection = LatentProjection(weights, np.zeros(3, dtype=np.float32))
    return LoadedModel(
        pipe=pipe,
        name="sd15-random",
        path=Path("sd15-random"),
        family="sd1",
        placement=Placement(torch.device("cpu"), torch.float32),
        projection=projection,
        base_scheduler_config=dict(pipe.scheduler.config),
    )


def engine_runner(pipe):  # noqa: ANN001, ANN201
    """LDM Studio's generate() on the same in-memory pipeline, or None if the engine is not built."""
    try:
        from ldm_studio.engine.generate import generate
        from ldm_studio.engine.preview import PreviewSettings
        from ldm_studio.engine.request import GenerationRequest
    except ImportError as error:
        print(f"(engine not measured: {error})")
        return None
    model = loaded_model(pipe)

    def run(args) -> float:  # noqa: ANN001
        request = GenerationRequest(
            "a red apple on a wooden table",
            seed=1,
            steps=args.steps,
            guidance=7.0,
            sampler="Euler",
            width=args.size,
            height=args.size,
        )
        started = time.perf_counter()
        result = generate(model, request, preview=PreviewSettings("fast"))
        if type(result).__name__ != "Finished":
            raise RuntimeError(f"engine run did not finish: {result}")
        return time.perf_counter() - started

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()

    import torch

    from ldm_studio.engine.checkpoints.info import estimate_memory

    if args.threads:
        torch.set_num_threads(args.threads)
    before_build = RssSampler.current()
    started = time.perf_counter()
    pipe = build_pipeline()
    build_seconds = time.perf_counter() - started
    counts = {
        name: sum(p.numel() for p in getattr(pipe, name).parameters())
        for name in ("unet", "vae", "text_encoder")
    }
    clock = StepClock(pipe)
    engine = engine_runner(pipe)
    runs = {"bare diffusers pipeline": lambda: run_bare(pipe, args, clock)}
    if engine is not None:
        runs["LDM Studio engine"] = lambda: engine(args)
    # Warm-up at a small size so neither measured run pays first-call allocations alone.
    run_bare(pipe, argparse.Namespace(steps=1, size=128), clock)
    results = {}
    for name, run in runs.items():
        clock.reset()
        with RssSampler() as memory:
            total = run()
        results[name] = (statistics.median(clock.steps()), total, memory.peak, memory.peak - memory.start)

    weights = sum(counts.values()) * 4
    estimate = estimate_memory(sum(counts.values()), args.size, pipe.unet.config.block_out_channels[0])
    print(
        f"SD 1.5-sized random weights: UNet {counts['unet']:,}, VAE {counts['vae']:,}, "
        f"CLIP-L {counts['text_encoder']:,} parameters (built in {build_seconds:.0f} s, "
        f"+{(RssSampler.current() - before_build) / GB:.2f} GB RSS)"
    )
    print(
        f"fp32, {args.size}x{args.size}, CFG 7 (batch 2 per UNet call), Euler, {args.steps} steps, "
        f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'':<26}{'s/step':>8}{'total s':>9}{'peak RSS GB':>13}{'working GB':>12}")
    for name, (step, total, peak, working) in results.items():
        print(f"{name:<26}{step:8.2f}{total:9.1f}{peak / GB:13.2f}{working / GB:12.2f}")
    if len(results) == 2:
        (bare_step, bare_total, bare_peak, _), (eng_step, eng_total, eng_peak, _) = results.values()
        print(
            f"{'ratio engine / bare':<26}{eng_step / bare_step:8.3f}{eng_total / bare_total:9.3f}"
            f"{eng_peak / bare_peak:13.3f}"
        )
    print(f"ModelInfo fp32 estimate for this size: {estimate / GB:.2f} GB (weights {weights / GB:.2f} GB)")


if __name__ == "__main__":
    main()
