"""Which CPU path is fastest for the same image: an SD 1.5-sized UNet step (512x512, CFG batch 2) and
VAE decode (random weights, shapes from resources/configs/sd1) in float32 eager, channels-last,
bf16 autocast, bf16 autocast + channels-last, and (UNet only) with token merging (tomesd), in one
process, the variants interleaved A B C D A B C D ... so that drift on a shared CPU hits them alike.

    nice python3 bench/cpu_speed.py [--repeats 3] [--size 512] [--threads N] [--no-tome]

Prints the median seconds, the ratio to float32 eager, and how far each output is from float32
eager on the same input: the UNet's relative error and the decoded image's largest difference in
8-bit pixel levels (0-255) and its PSNR. What the engine picks on this CPU is printed first
(engine.cpu_speed.cpu_speed_plan).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.big_model import build, relative_error  # noqa: E402

UNET_VARIANTS = ("fp32", "fp32 channels-last", "bf16 autocast", "bf16 autocast channels-last")
TOME = "fp32 + ToMe 0.5"
TOME_BF16 = "bf16 autocast channels-last + ToMe 0.5"


def to_8bit(image):  # noqa: ANN001, ANN201
    import torch

    return ((image.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.int16)


def compare(image, reference) -> tuple[int, float]:  # noqa: ANN001
    """The largest difference in 8-bit levels, and the PSNR in dB, of a [-1, 1] image vs the reference."""
    difference = (to_8bit(image) - to_8bit(reference)).abs()
    mse = float(((image.float().clamp(-1, 1) - reference.float().clamp(-1, 1)) ** 2).mean()) / 4
    return int(difference.max()), (10 * math.log10(1 / mse) if mse > 0 else float("inf"))


def region(variant: str):  # noqa: ANN201
    import torch

    if variant.startswith("bf16 autocast"):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--no-tome", action="store_true")
    parser.add_argument("--skip-vae", action="store_true")
    args = parser.parse_args()

    import torch

    from ldm_studio.engine.cpu_speed import cpu_speed_plan

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    print(
        f"torch {torch.__version__}, capability {torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"engine picks on this CPU: {cpu_speed_plan('cpu')}")
    latent = args.size // 8
    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(2, 4, latent, latent, generator=generator)
    text = torch.randn(2, 77, 768, generator=generator)
    timestep = torch.tensor(500)
    latents = torch.randn(1, 4, latent, latent, generator=generator) / 0.18215

    unet = build("unet", 0)
    unet_cl = copy.deepcopy(unet).to(memory_format=torch.channels_last)
    unets = {
        "fp32": unet,
        "fp32 channels-last": unet_cl,
        "bf16 autocast": unet,
        "bf16 autocast channels-last": unet_cl,
    }
    variants = list(UNET_VARIANTS)
    if not args.no_tome:
        import tomesd

        tome = copy.deepcopy(unet)
        tomesd.apply_patch(tome, ratio=0.5)
        tome_cl = copy.deepcopy(tome).to(memory_format=torch.channels_last)
        unets[TOME], unets[TOME_BF16] = tome, tome_cl
        variants += [TOME, TOME_BF16]

    times: dict[str, list[float]] = {v: [] for v in variants}
    outputs = {}
    # One outer autocast region, as over a generation: its bf16 weight copies are made once (the
    # first repeat pays that); the fp32 variants switch autocast off inside it.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(args.repeats):
            for variant in variants:
                x = sample.to(memory_format=torch.channels_last) if "channels-last" in variant else sample
                with region(variant):
                    t = time.perf_counter()
                    out = unets[variant](x, timestep, encoder_hidden_states=text).sample
                    times[variant].append(time.perf_counter() - t)
                outputs[variant] = out.float()
                print(f"  UNet {variant:<40} {times[variant][-1]:6.2f} s", flush=True)
    base = statistics.median(times["fp32"])
    print(f"\nUNet step (CFG batch 2, {args.size}x{args.size}), median of {args.repeats}, interleaved")
    print(f"{'variant':<40}{'median s':>9}{'vs fp32':>8}{'rel.err':>10}{'max abs':>9}")
    for variant in variants:
        med = statistics.median(times[variant])
        err = relative_error(outputs[variant], outputs["fp32"])
        worst = float((outputs[variant] - outputs["fp32"]).abs().max())
        print(f"{variant:<40}{med:9.2f}{med / base:8.2f}{err:10.2e}{worst:9.2e}")
    del unets, unet, unet_cl
    if args.skip_vae:
        return

    vae = build("vae", 1)
    vae_cl = copy.deepcopy(vae).to(memory_format=torch.channels_last)
    vaes = {
        "fp32": vae,
        "fp32 channels-last": vae_cl,
        "bf16 autocast": vae,
        "bf16 autocast channels-last": vae_cl,
    }
    decode_times: dict[str, list[float]] = {v: [] for v in UNET_VARIANTS}
    images = {}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(args.repeats):
            for variant in UNET_VARIANTS:
                x = latents.to(memory_format=torch.channels_last) if "channels-last" in variant else latents
                with region(variant):
                    t = time.perf_counter()
                    image = vaes[variant].decode(x).sample
                    decode_times[variant].append(time.perf_counter() - t)
                images[variant] = image.float()
                print(f"  VAE {variant:<30} {decode_times[variant][-1]:6.2f} s", flush=True)
    base = statistics.median(decode_times["fp32"])
    print(f"\nVAE decode ({args.size}x{args.size}), median of {args.repeats}, interleaved")
    print(f"{'variant':<30}{'median s':>9}{'vs fp32':>8}{'max levels':>11}{'PSNR dB':>9}")
    for variant in UNET_VARIANTS:
        med = statistics.median(decode_times[variant])
        worst, db = compare(images[variant], images["fp32"])
        print(f"{variant:<30}{med:9.2f}{med / base:8.2f}{worst:11d}{db:9.1f}")


if __name__ == "__main__":
    main()
