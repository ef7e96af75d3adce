"""Tiled vs untiled VAE decode on the SD 1.5-sized VAE (resources/configs/sd1/vae, random weights):
seconds and peak resident memory per decode, each decode in its own subprocess so its peak RSS is
its own; variants interleaved (untiled, tiled, untiled, tiled, ...) and the median taken.

    nice python3 bench/tiled_vae.py [--size 1024] [--repeats 2] [--threads N]

Also prints the engine's estimate (engine.vae_tiling) beside the measured working memory (peak RSS
above the RSS with the weights loaded), so the estimate that drives "Tiled VAE: Auto" is checked.
An untiled run is skipped, with a line saying so, when the machine's available memory is below
1.5x its estimate: the kernel's OOM killer would otherwise pick some other process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GB = 1e9


def build_vae():  # noqa: ANN201
    import torch
    from diffusers import AutoencoderKL

    from ldm_studio.paths import resource

    data = json.loads(resource("configs", "sd1", "vae", "config.json").read_text(encoding="utf-8"))
    torch.manual_seed(0)
    return AutoencoderKL(**{k: v for k, v in data.items() if not k.startswith("_")}).eval()


def one_decode(size: int, tiled: bool, threads: int) -> dict:
    """Runs in the child: build the VAE, decode one latent, report seconds and RSS."""
    import torch

    from bench.sd15_size import RssSampler
    from ldm_studio.engine.vae_tiling import decode_in_bounds

    torch.set_num_threads(threads)
    vae = build_vae()
    latent = torch.randn(1, 4, size // 8, size // 8, generator=torch.Generator().manual_seed(0))
    heard = []
    with torch.no_grad(), RssSampler() as rss:
        started = time.perf_counter()
        decode_in_bounds(vae, latent, "always" if tiled else "never", heard.append)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_gb": rss.peak / GB,
        "working_gb": (rss.peak - rss.start) / GB,
        "tiled": heard[0].tiled,
    }


def run_child(size: int, tiled: bool, threads: int) -> dict:
    command = [sys.executable, __file__, "--child", "--size", str(size), "--threads", str(threads)]
    if tiled:
        command.append("--tiled")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["killed"])[-1][:200]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--only", choices=["untiled", "tiled"], help="run one variant (a busy machine)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tiled", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    from ldm_studio.engine.device import default_cpu_threads
    from ldm_studio.engine.vae_tiling import available_ram, decoder_peak_bytes, tiled_decoder_peak_bytes

    threads = args.threads or default_cpu_threads()
    if args.child:
        print(json.dumps(one_decode(args.size, args.tiled, threads)))
        return
    channels = (128, 256, 512, 512)
    shape = (1, 4, args.size // 8, args.size // 8)
    estimate = {
        False: decoder_peak_bytes(shape, channels),
        True: tiled_decoder_peak_bytes(shape, channels, 64),
    }
    print(f"CPU: {torch.backends.cpu.get_cpu_capability()}, {threads} threads, torch {torch.__version__}")
    print(f"SD 1.5-sized VAE, fp32, {args.size}x{args.size}, tiles of 512 px with 25% overlap")
    runs: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(args.repeats):
        for tiled in (False, True):
            if args.only and args.only != ("tiled" if tiled else "untiled"):
                continue
            free = available_ram() or 0
            if free < 1.5 * estimate[tiled]:
                print(f"  skipped {'tiled' if tiled else 'untiled'}: {free / GB:.1f} GB available, "
                      f"estimate {estimate[tiled] / GB:.1f} GB")  # fmt: skip
                continue
            result = run_child(args.size, tiled, threads)
            print(f"  {'tiled  ' if tiled else 'untiled'} {json.dumps(result)}", flush=True)
            if "error" not in result:
                runs[tiled].append(result)
    medians = {}
    for tiled, results in runs.items():
        if not results:
            continue
        medians[tiled] = {
            key: statistics.median(r[key] for r in results) for key in ("seconds", "peak_gb", "working_gb")
        }
        name = "tiled  " if tiled else "untiled"
        m = medians[tiled]
        print(
            f"{name}: {m['seconds']:.1f} s, peak RSS {m['peak_gb']:.2f} GB, "
            f"working {m['working_gb']:.2f} GB (estimate {estimate[tiled] / GB:.2f} GB), n={len(results)}"
        )
    if len(medians) == 2:
        time_ratio = medians[True]["seconds"] / medians[False]["seconds"]
        memory_ratio = medians[True]["working_gb"] / medians[False]["working_gb"]
        print(f"tiled / untiled: time x{time_ratio:.2f}, working memory x{memory_ratio:.2f}")


if __name__ == "__main__":
    main()
