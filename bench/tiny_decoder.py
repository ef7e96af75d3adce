"""Preview cost per step on the SD 1.5-sized model: Fast projection, tiny decoder (TAESD architecture,
random weights) and the full SD 1.5 VAE, beside one UNet step with CFG.

All decode one 64×64×4 latent (a 512×512 image) on this machine with the app's thread count, in
interleaved rounds (fast, tiny, VAE, UNet step, fast, tiny, …), medians printed; the tiny decoder goes
through the engine's loader (the original ``taesd_decoder.pth`` layout) and the engine's preview path.

    nice -n 19 python3 -m bench.tiny_decoder [--repeats 3] [--vae-repeats 2] [--no-step]
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


def sd15_unet():  # noqa: ANN201
    from diffusers import UNet2DConditionModel

    from ldm_studio.paths import resource

    config = json.loads(resource("configs", "sd1", "unet", "config.json").read_text(encoding="utf-8"))
    torch.manual_seed(0)
    kwargs = {key: value for key, value in config.items() if not key.startswith("_")}
    return UNet2DConditionModel(**kwargs).eval()


def once(run) -> float:  # noqa: ANN001
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def timed(run, repeats: int) -> list[float]:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    import numpy as np

    from ldm_studio.engine.device import set_cpu_threads
    from ldm_studio.engine.preview import LatentProjection, fast_preview, tile, to_uint8

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds (fast and tiny run in each)")
    parser.add_argument("--vae-repeats", type=int, default=2, help="rounds that also run the VAE / UNet")
    parser.add_argument("--latent", type=int, default=64, help="latent side (64 = a 512 px image)")
    parser.add_argument("--no-step", action="store_true", help="skip the UNet step (its figure)")
    args = parser.parse_args()
    set_cpu_threads()
    latents = torch.randn(1, 4, args.latent, args.latent, generator=torch.Generator().manual_seed(0)) * 0.8
    side = args.latent * 8
    # the cost of the projection does not depend on its numbers: FACTS.md's A1111 table
    projection = LatentProjection(
        np.array(
            [[0.298, 0.207, 0.208], [0.187, 0.286, 0.173], [-0.158, 0.189, 0.264], [-0.184, -0.271, -0.473]],
            dtype=np.float32,
        ),
        np.zeros(3, dtype=np.float32),
    )
    times: dict[str, list[float]] = {"fast": [], "tiny": [], "vae": [], "step": []}
    with tempfile.TemporaryDirectory() as scratch:
        tiny = tiny_decoder(Path(scratch))
        vae = sd15_vae()
        unet = None if args.no_step else sd15_unet()
        text = torch.randn(2, 77, 768, generator=torch.Generator().manual_seed(1))
        batch = torch.cat([latents] * 2)  # CFG: unconditional and conditional in one call
        tiny.decode(latents[:, :, :8, :8], SD_SCALING)  # first-call set-up kept out of the figures
        with torch.inference_mode():
            for round_ in range(args.repeats):  # interleaved: load drift hits every variant alike
                times["fast"].append(once(lambda: fast_preview(latents, projection, (side, side))))
                times["tiny"].append(once(lambda: tile(to_uint8(tiny.decode(latents, SD_SCALING)))))
                if round_ < args.vae_repeats:
                    times["vae"].append(once(lambda: tile(to_uint8(vae.decode(latents / SD_SCALING).sample))))
                    if unet is not None:
                        times["step"].append(once(lambda: unet(batch, 500, encoder_hidden_states=text)))
    params = (
        sum(p.numel() for p in tiny.model.decoder.parameters()),
        sum(p.numel() for p in vae.decoder.parameters()),
    )
    print(
        f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, torch threads: {torch.get_num_threads()}"
    )
    print(f"preview of a {args.latent}x{args.latent}x4 latent ({side}x{side} px) to RGB uint8, fp32:")
    step = statistics.median(times["step"]) if times["step"] else None
    rows = (
        ("Fast projection", None, times["fast"]),
        ("tiny decoder (TAESD)", params[0], times["tiny"]),
        ("Full: SD 1.5 VAE", params[1], times["vae"]),
    )
    for label, count, values in rows:
        median = statistics.median(values)
        size = f"{count / 1e6:5.2f} M params" if count else " " * 14
        share = f" = {median / step:7.1%} of a UNet CFG step" if step else ""
        print(f"  {label:<22} {size}: {median * 1000:9.1f} ms (median of {len(values)}){share}")
    if step:
        print(f"  UNet step with CFG (batch 2): {step * 1000:9.1f} ms (median of {len(times['step'])})")
    fast_s, tiny_s, vae_s = (statistics.median(times[key]) for key in ("fast", "tiny", "vae"))
    print(f"  ratio VAE / tiny: {vae_s / tiny_s:.1f}x, tiny / fast: {tiny_s / fast_s:.1f}x")


if __name__ == "__main__":
    main()
