"""LoRA training on an SD 1.5-sized model (random weights, the shapes of resources/configs/sd1):
seconds per optimizer step and peak memory at 512x512, batch 1, through ``train_lora`` itself.

    nice -n 19 python3 bench/lora_training.py [--steps 3] [--size 512] [--no-checkpointing]
        [--base-dtype float32|bfloat16] [--threads N] [--rank 8]

The random model is saved once as a diffusers folder in a scratch directory (a few GB) and opened
with the engine's loader, as a user's model would be. Peak memory is the process RSS sampled every
10 ms (bench/sd15_size.py's sampler); "working" is the peak above the RSS just before training.
Ratios are against the first measured step's time in the same run (the warm-up).
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sd15_size import GB, RssSampler, build_pipeline  # noqa: E402


def write_images(folder: Path, size: int, count: int = 2) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        width, height = (size, size) if index % 2 == 0 else (size * 3 // 2, size)
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(
            folder / f"{index}.png"
        )
        (folder / f"{index}.txt").write_text(f"a photo of thing {index}, red\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--no-checkpointing", action="store_true")
    parser.add_argument("--base-dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--scratch", type=Path, default=None, help="where the random model is written")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    from ldm_studio.training.config import OptimConfig, RunConfig
    from ldm_studio.training.lora_training import LoraTrainingConfig, train_lora

    if args.threads:
        torch.set_num_threads(args.threads)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="ldm-lora-bench-"))
    if args.scratch is None:
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)  # a few GB: never leave it behind
    model = scratch / "sd15-random"
    started = time.perf_counter()
    if args.build_only:
        build_pipeline().save_pretrained(model)
        return
    if not (model / "model_index.json").is_file():  # in a child process: its memory is not ours
        subprocess.run([sys.executable, __file__, "--build-only", "--scratch", str(scratch)], check=True)
    print(f"random SD 1.5-sized model ready in {time.perf_counter() - started:.1f} s ({model})")
    data = write_images(scratch / "data", args.size)
    config = LoraTrainingConfig(
        base=model,
        data=data,
        out=scratch / "bench.safetensors",
        run_dir=scratch / f"run-{time.time_ns()}",
        rank=args.rank,
        alpha=args.rank / 2,
        resolution=args.size,
        base_dtype=args.base_dtype,
        gradient_checkpointing=not args.no_checkpointing,
        run=RunConfig(
            max_steps=args.steps,
            batch_size=1,
            mixed_precision="auto",
            num_threads=args.threads,
            log_every=1,
            sample_every=0,
            checkpoint_every=10_000,
        ),
        optim=OptimConfig(learning_rate=1e-4, warmup_steps=1),
    )
    marks: list[float] = []
    with RssSampler() as memory:
        begun = time.perf_counter()
        train_lora(config, on_progress=lambda *_: marks.append(time.perf_counter()))
    steps = [later - earlier for earlier, later in zip([begun, *marks], marks, strict=False)]
    first, rest = steps[0], steps[1:] or steps
    import os

    from ldm_studio.engine.precision import cpu_supports_bf16

    print(
        f"CPU {torch.backends.cpu.get_cpu_capability()}, bf16 units {cpu_supports_bf16()}, "
        f"load average {os.getloadavg()[0]:.1f} (1 min) at the end"
    )
    print(
        f"threads {torch.get_num_threads()}, {args.size}x{args.size}, batch 1, rank {args.rank}, "
        f"base {args.base_dtype}, gradient checkpointing {'off' if args.no_checkpointing else 'on'}"
    )
    print(f"load + cache + first step: {first:.1f} s")
    print(f"seconds per step (median of {len(rest)} after it): {statistics.median(rest):.1f} s")
    print(
        f"peak RSS {memory.peak / GB:.2f} GB (working {max(0, memory.peak - memory.start) / GB:.2f} GB "
        f"above {memory.start / GB:.2f} GB before the model was opened)"
    )
    print(f"LoRA file: {config.out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
