"""Decode cost of a tiny autoencoder (TAESD architecture, random weights) vs the SD 1.5 VAE.

Both decode one 64×64×4 latent (a 512×512 image) on this machine with the app's thread count; the
tiny decoder goes through the engine's loader (the original ``taesd_decoder.pth`` layout).

    nice -n 19 python3 -m bench.tiny_decoder [--repeats 3] [--vae-repeats 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

SD_SCALING = 0.18215


def sd15_vae():  # noqa: ANN201
    from diffusers import AutoencoderKL

    from ldm_studio.paths import resource

    config = json.loads(resource("configs", "sd1", "vae", "config.json").read_text(encoding="utf-8"))
    torch.manual_seed(0)
    return AutoencoderKL(**{key: value for key, value in config.items() if not key.startswith("_")}).eval()


def tiny_decoder(folder: Path):  # noqa: ANN201
    from diffusers import AutoencoderTiny

    from ldm_studio.engine.tiny_autoencoder import load_tiny_autoencoder

    torch.manual_seed(0)
    model = AutoencoderTiny()  # diffusers' defaults are TAESD's published architecture
    original = {
        f"{int(key.split('.')[2]) + 1}.{key.split('.', 3)[3]}": value
        for key, value in model.state_dict().items()
        if key.startswith("decoder.")
    }
    torch.save(original, folder / "taesd_decoder.pth")
    return load_tiny_autoencoder(folder / "taesd_decoder.pth")


def timed(run, repeats: int) -> list[float]:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    from ldm_studio.engine.device import set_cpu_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vae-repeats", type=int, default=1)
    parser.add_argument("--latent", type=int, default=64, help="latent side (64 = a 512 px image)")
    args = parser.parse_args()
    set_cpu_threads()
    latents = torch.randn(1, 4, args.latent, args.latent, generator=torch.Generator().manual_seed(0)) * 0.8
    with tempfile.TemporaryDirectory() as scratch:
        tiny = tiny_decoder(Path(scratch))
        vae = sd15_vae()
        tiny.decode(latents[:, :, :8, :8], SD_SCALING)  # first-call set-up kept out of the figures
        tiny_times = timed(lambda: tiny.decode(latents, SD_SCALING), args.repeats)
        with torch.inference_mode():
            vae_times = timed(lambda: vae.decode(latents / SD_SCALING), args.vae_repeats)
    tiny_s, vae_s = statistics.median(tiny_times), statistics.median(vae_times)
    params = (
        sum(p.numel() for p in tiny.model.decoder.parameters()),
        sum(p.numel() for p in vae.decoder.parameters()),
    )
    side = args.latent * 8
    print(
        f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, torch threads: {torch.get_num_threads()}"
    )
    print(f"decode of a {args.latent}x{args.latent}x4 latent ({side}x{side} px), fp32:")
    rows = (("tiny decoder (TAESD)", params[0], tiny_times), ("SD 1.5 VAE decoder", params[1], vae_times))
    for label, count, times in rows:
        median = statistics.median(times)
        print(f"  {label:<22} {count / 1e6:5.2f} M params: {median * 1000:8.0f} ms (median of {len(times)})")
    print(f"  ratio VAE / tiny: {vae_s / tiny_s:.1f}x")


if __name__ == "__main__":
    main()
