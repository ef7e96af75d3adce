"""An SD 1.5-sized UNet and VAE (random weights, shapes from resources/configs/sd1) on the CPU at 512x512
with CFG: seconds per UNet step and per VAE decode in fp32, under bf16 autocast and with bf16 weights,
and what each costs in accuracy against fp32 on the same inputs, all in one run.

    nice python3 bench/big_model.py [--steps 2] [--size 512] [--threads N]

Modes, measured interleaved so that drift in a shared CPU hits them alike:
  fp32            the weights and the arithmetic in float32 (what "auto" gives on a CPU today)
  bf16 autocast   float32 weights, matmuls and convolutions in bfloat16 (torch.autocast); one
                  autocast region around all the steps, so the bf16 copies of the weights are made
                  once per generation (its first step shows that cost) rather than every step
  bf16 weights    the model converted to bfloat16 (half the memory; norms run in bf16 too)
  bf16 autocast, channels_last   (VAE only) bf16 autocast on a channels-last VAE
Relative error is ||out - out_fp32|| / ||out_fp32||; for images also the PSNR against fp32 in dB.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CONFIGS = Path(__file__).resolve().parent.parent / "resources" / "configs" / "sd1"
MODES = ("fp32", "bf16 autocast", "bf16 weights")
CHANNELS_LAST = "bf16 autocast, channels_last"  # the VAE only: the UNet showed no gain from it
VAE_MODES = (*MODES, CHANNELS_LAST)


def build(component: str, seed: int):  # noqa: ANN201 (a diffusers model)
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    config = json.loads((CONFIGS / component / "config.json").read_text(encoding="utf-8"))
    model_class = UNet2DConditionModel if component == "unet" else AutoencoderKL
    torch.manual_seed(seed)
    return model_class.from_config(config).eval()


def relative_error(value, reference) -> float:  # noqa: ANN001
    value, reference = value.float(), reference.float()
    return float((value - reference).norm() / reference.norm())


def psnr(image, reference) -> float:  # noqa: ANN001 (images in [-1, 1])
    mse = float(((image.float().clamp(-1, 1) - reference.float().clamp(-1, 1)) ** 2).mean())
    return 10 * math.log10(4.0 / mse) if mse > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=2, help="UNet calls per mode")
    parser.add_argument("--decodes", type=int, default=1, help="VAE decodes per mode")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()

    import torch

    from ldm_studio.engine.precision import cpu_supports_bf16, wants_bf16_autocast

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    latent = args.size // 8
    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(2, 4, latent, latent, generator=generator)  # CFG: negative and positive halves
    text = torch.randn(2, 77, 768, generator=generator)
    timestep = torch.tensor(500)
    latents = torch.randn(1, 4, latent, latent, generator=generator) / 0.18215

    print(f"SD 1.5-sized UNet and VAE, random weights, {args.size}x{args.size}, CFG batch 2, CPU")
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, cpu_supports_bf16={cpu_supports_bf16()}")
    print(f"precision 'auto' picks: {'bf16 autocast' if wants_bf16_autocast('cpu', 'auto') else 'fp32'}")

    t = time.perf_counter()
    unet = build("unet", 0)
    vae = build("vae", 1)
    print(f"built the models in {time.perf_counter() - t:.1f} s")
    unets = {"fp32": unet, "bf16 autocast": unet, "bf16 weights": copy.deepcopy(unet).to(torch.bfloat16)}
    vaes = {
        "fp32": vae,
        "bf16 autocast": vae,
        "bf16 weights": copy.deepcopy(vae).to(torch.bfloat16),
        CHANNELS_LAST: copy.deepcopy(vae).to(memory_format=torch.channels_last),
    }

    def region(mode: str):  # noqa: ANN202
        return (
            torch.autocast("cpu", dtype=torch.bfloat16)
            if mode.startswith("bf16 autocast")
            else contextlib.nullcontext()
        )

    def dtype_of(mode: str):  # noqa: ANN202
        return torch.bfloat16 if mode == "bf16 weights" else torch.float32

    # UNet, modes interleaved step by step. One autocast region stays open over all the steps (as it
    # would over a generation), so its bf16 weight copies are made once; the other modes switch
    # autocast off inside it, which leaves that cache alone.
    step_times: dict[str, list[float]] = {mode: [] for mode in MODES}
    outputs = {}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(args.steps):
            for mode in MODES:
                inner = (
                    contextlib.nullcontext()
                    if mode == "bf16 autocast"
                    else torch.autocast("cpu", enabled=False)
                )
                t = time.perf_counter()
                with inner:
                    out = unets[mode](
                        sample.to(dtype_of(mode)), timestep, encoder_hidden_states=text.to(dtype_of(mode))
                    ).sample
                step_times[mode].append(time.perf_counter() - t)
                outputs[mode] = out.float()
                print(f"  UNet {mode:<14} {step_times[mode][-1]:6.2f} s", flush=True)

    decode_times: dict[str, list[float]] = {mode: [] for mode in VAE_MODES}
    images = {}
    for _ in range(args.decodes):
        for mode in VAE_MODES:
            memory_format = torch.channels_last if mode == CHANNELS_LAST else torch.contiguous_format
            t = time.perf_counter()
            with region(mode):
                image = vaes[mode].decode(latents.to(dtype_of(mode), memory_format=memory_format)).sample
            decode_times[mode].append(time.perf_counter() - t)
            images[mode] = image.float()
            print(f"  VAE decode {mode:<28} {decode_times[mode][-1]:6.2f} s", flush=True)

    print()
    base_step = statistics.median(step_times["fp32"])
    base_decode = statistics.median(decode_times["fp32"])
    header = f"{'s/step first':>12} {'s/step last':>12} {'median':>8} {'vs fp32':>8} {'rel.err':>9}"
    print(f"{'UNet':<15} {header}")
    for mode in MODES:
        steps = step_times[mode]
        median_step = statistics.median(steps)
        print(
            f"{mode:<15} {steps[0]:12.2f} {steps[-1]:12.2f} {median_step:8.2f} "
            f"{median_step / base_step:8.2f} {relative_error(outputs[mode], outputs['fp32']):9.2e}"
        )
    print(f"{'VAE decode':<29} {'s/decode':>9} {'vs fp32':>8} {'rel.err':>9} {'PSNR dB':>8}")
    for mode in VAE_MODES:
        median_decode = statistics.median(decode_times[mode])
        print(
            f"{mode:<29} {median_decode:9.2f} {median_decode / base_decode:8.2f} "
            f"{relative_error(images[mode], images['fp32']):9.2e} {psnr(images[mode], images['fp32']):8.1f}"
        )


if __name__ == "__main__":
    main()
