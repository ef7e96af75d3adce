"""Upscaling ×4: Lanczos against a Real-ESRGAN-x4plus-sized RRDBNet (23 blocks, 64 features, random
weights), tiled at the default tile and overlap and at a smaller tile: seconds and peak memory.

    nice python3 bench/upscale.py [--size 512] [--small-tile 96] [--threads N]
    python3 bench/upscale.py --quick     # a 32 px image: a smoke run of a few seconds per variant

The network is written to a temporary ``.pth`` in Real-ESRGAN's own layout (``{"params_ema": …}``,
``conv_first``, ``body.N.rdbK.convJ``, ``conv_up1``…), so it is opened the way a downloaded file is:
``load_upscaler`` and its architecture detection. Weights are random; only the shapes matter for time.

Every variant runs in a fresh subprocess, so one variant's allocations cannot lower another's peak.
Two memory figures: "peak RSS" is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that process
(the whole process: Python, torch, the weights and the upscale); "working" is the peak above the RSS
just before the upscale, sampled every 10 ms (``bench.sd15_size.RssSampler``): the tiles'
activations, the output and the blend buffers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sd15_size import GB, RssSampler  # noqa: E402

SCALE = 4
QUICK_SIZE = 32
QUICK_SMALL_TILE = 16
QUICK_OVERLAP = 4  # the default 24 does not fit a 16 px tile


def write_x4plus(path: Path) -> int:
    """A random RRDBNet of RealESRGAN_x4plus.pth's shapes saved under its key names; its parameters."""
    import torch

    from ldm_studio.engine.upscalers.networks import RRDBNet

    torch.manual_seed(0)
    network = RRDBNet(features=64, growth=32, blocks=23, upsamples=2)
    tensors = {}
    for name, value in network.state_dict().items():
        if name.startswith("conv_ups."):  # ours: conv_ups.0 / .1; Real-ESRGAN's: conv_up1 / conv_up2
            index, kind = name.split(".")[1:]
            name = f"conv_up{int(index) + 1}.{kind}"
        tensors[name] = value
    torch.save({"params_ema": tensors}, path)
    return sum(value.numel() for value in tensors.values())


def sample_image(size: int):  # noqa: ANN201
    """A deterministic size x size RGB picture with gradients and fine detail."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    detail = np.random.default_rng(0).random((size, size), dtype=np.float32)
    pixels = np.stack([x, y, 0.5 + 0.3 * np.sin(40 * (x + y)) + 0.2 * (detail - 0.5)], axis=-1)
    return Image.fromarray((np.clip(pixels, 0, 1) * 255).round().astype(np.uint8), "RGB")


def measure_one(variant: dict) -> dict:
    """One variant in this (fresh) process: what the parent prints."""
    import resource

    import torch

    from ldm_studio.engine.upscalers import LANCZOS, load_upscaler, upscale
    from ldm_studio.engine.upscalers.tiling import tile_count

    if variant["threads"]:
        torch.set_num_threads(variant["threads"])
    image = sample_image(variant["size"])
    load_seconds, tiles = 0.0, 1
    if variant["kind"] == "lanczos":
        upscaler = LANCZOS
        options = {}
    else:
        started = time.perf_counter()
        upscaler = load_upscaler(Path(variant["file"]))
        load_seconds = time.perf_counter() - started
        options = {"tile": variant["tile"], "overlap": variant["overlap"]}
        tiles = tile_count(image.width, image.height, variant["tile"], variant["overlap"])
    with RssSampler() as memory:
        started = time.perf_counter()
        result = upscale(image, upscaler, SCALE, **options)
        seconds = time.perf_counter() - started
    if result.size != (image.width * SCALE, image.height * SCALE):
        raise SystemExit(f"{variant['name']}: got {result.size}")
    return {
        "seconds": seconds,
        "load_seconds": load_seconds,
        "tiles": tiles,
        "architecture": getattr(upscaler, "architecture", "resize"),
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux: kB
        "working": memory.peak - memory.start,
        "threads": torch.get_num_threads(),
    }


def variants(args: argparse.Namespace, file: Path) -> list[dict]:
    from ldm_studio.engine.upscalers import DEFAULT_OVERLAP, DEFAULT_TILE

    size = QUICK_SIZE if args.quick else args.size
    small = QUICK_SMALL_TILE if args.quick else args.small_tile
    small_overlap = QUICK_OVERLAP if args.quick else min(DEFAULT_OVERLAP, small // 2)
    common = {"size": size, "threads": args.threads, "file": str(file)}
    return [
        {**common, "name": "Lanczos", "kind": "lanczos"},
        {**common, "name": f"RRDBNet tile {DEFAULT_TILE}/{DEFAULT_OVERLAP}", "kind": "network",
         "tile": DEFAULT_TILE, "overlap": DEFAULT_OVERLAP},
        {**common, "name": f"RRDBNet tile {small}/{small_overlap}", "kind": "network",
         "tile": small, "overlap": small_overlap},
    ]  # fmt: skip


def run_in_subprocess(variant: dict) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--variant", json.dumps(variant)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant['name']} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=512, help="side of the square input image")
    parser.add_argument("--small-tile", type=int, default=96, help="the smaller tile (input pixels)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help=f"a {QUICK_SIZE} px image: a smoke run")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: one variant, JSON in and out
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(measure_one(json.loads(args.variant))))
        return

    with tempfile.TemporaryDirectory(prefix="ldm-bench-upscale-") as folder:
        file = Path(folder) / "RealESRGAN_x4plus-random.pth"
        parameters = write_x4plus(file)
        planned = variants(args, file)
        size = planned[0]["size"]
        print(
            f"x{SCALE} upscale of a {size}x{size} image; RRDBNet of RealESRGAN_x4plus's shapes "
            f"({parameters:,} parameters, {file.stat().st_size / 1e6:.0f} MB file), random weights; "
            f"fp32 CPU; one fresh process per variant; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        results = {}
        for variant in planned:
            results[variant["name"]] = run_in_subprocess(variant)
            print(f"  {variant['name']}: {results[variant['name']]['seconds']:.2f} s", flush=True)

    first = results[planned[1]["name"]]  # the default tiling: the baseline of the ratios
    print(f"torch threads {first['threads']}; architecture detected: {first['architecture']}")
    header = f"{'':<24}{'tiles':>6}{'load s':>8}{'upscale s':>11}{'peak RSS GB':>13}{'working GB':>12}"
    print(header + f"{'s / default':>13}{'working / default':>19}")
    for name, result in results.items():
        print(
            f"{name:<24}{result['tiles']:6d}{result['load_seconds']:8.2f}{result['seconds']:11.2f}"
            f"{result['peak_rss'] / GB:13.2f}{result['working'] / GB:12.3f}"
            f"{result['seconds'] / first['seconds']:13.3f}"
            f"{result['working'] / max(first['working'], 1):19.3f}"
        )


if __name__ == "__main__":
    main()
