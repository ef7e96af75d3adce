"""OpenVINO against torch on this CPU: an SD 1.5-sized UNet step (512x512, CFG batch 2) and VAE decode
(random weights, shapes from resources/configs/sd1): conversion time, IR size on disk, seconds per
call and the difference from torch float32 eager on the same input, in one process, interleaved.

    pip install openvino   # not a dependency of LDM Studio; this script only measures it
    nice python3 bench/openvino_cpu.py [--repeats 3] [--size 512] [--only unet|vae]

Variants: torch fp32 eager; torch the engine's "auto" CPU path (engine.cpu_speed: channels-last,
bf16 autocast where the CPU has bf16 units); OpenVINO ``convert_model`` (static shapes) compiled
for CPU with INFERENCE_PRECISION_HINT f32, and with OpenVINO's own default hint (bf16 on CPUs with
bf16 units).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.big_model import build, relative_error  # noqa: E402
from bench.cpu_speed import compare  # noqa: E402


def folder_size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def measure(kind: str, args: argparse.Namespace) -> None:
    import openvino as ov
    import torch

    from ldm_studio.engine.cpu_speed import cpu_speed_plan

    plan = cpu_speed_plan("cpu")
    latent = args.size // 8
    generator = torch.Generator().manual_seed(1)
    if kind == "unet":
        model = build("unet", 0)
        inputs = (
            torch.randn(2, 4, latent, latent, generator=generator),
            torch.tensor(500),
            torch.randn(2, 77, 768, generator=generator),
        )

        class Wrapped(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, sample, timestep, text):  # noqa: ANN001, ANN201
                return self.inner(sample, timestep, encoder_hidden_states=text, return_dict=False)[0]

        use_channels_last = plan.channels_last_unet
    else:
        model = build("vae", 1)
        inputs = (torch.randn(1, 4, latent, latent, generator=generator) / 0.18215,)

        class Wrapped(torch.nn.Module):  # type: ignore[no-redef]
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, latents):  # noqa: ANN001, ANN201
                return self.inner.decode(latents, return_dict=False)[0]

        use_channels_last = plan.channels_last_vae
    wrapped = Wrapped(model).eval()

    t = time.perf_counter()
    with torch.no_grad():
        ov_model = ov.convert_model(wrapped, example_input=inputs)
    convert_s = time.perf_counter() - t
    scratch = Path(tempfile.mkdtemp(prefix="ov-ir-"))
    t = time.perf_counter()
    ov.save_model(ov_model, scratch / f"{kind}.xml", compress_to_fp16=False)
    save_s = time.perf_counter() - t
    ir_bytes = folder_size(scratch)
    core = ov.Core()
    default_hint = core.get_property("CPU", "INFERENCE_PRECISION_HINT")
    compiled = {}
    compile_s = {}
    for name, config in (
        ("OpenVINO f32", {"INFERENCE_PRECISION_HINT": "f32"}),
        (f"OpenVINO default ({default_hint})", {}),
    ):
        t = time.perf_counter()
        compiled[name] = core.compile_model(scratch / f"{kind}.xml", "CPU", config)
        compile_s[name] = time.perf_counter() - t
    shutil.rmtree(scratch, ignore_errors=True)
    del ov_model
    print(
        f"{kind}: convert_model {convert_s:.1f} s, save {save_s:.1f} s, IR {ir_bytes / 1e9:.2f} GB (fp32), "
        + ", ".join(f"compile {n} {s:.1f} s" for n, s in compile_s.items()),
        flush=True,
    )

    def torch_run(channels_last: bool, autocast: bool):  # noqa: ANN202
        # one copy of the weights, re-laid out before each run (untimed): memory is shared here
        def run() -> torch.Tensor:
            layout = torch.channels_last if channels_last else torch.contiguous_format
            wrapped.to(memory_format=layout)
            t = time.perf_counter()
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                out = wrapped(*inputs).float()
            return out, time.perf_counter() - t

        return run

    def ov_run(model):  # noqa: ANN001, ANN202
        numpy_inputs = [tensor.numpy() for tensor in inputs]

        def run() -> torch.Tensor:
            t = time.perf_counter()
            out = torch.from_numpy(model(numpy_inputs)[0].copy())
            return out, time.perf_counter() - t

        return run

    runs = {"torch fp32 eager": torch_run(False, False)}
    runs[f"torch engine auto ({plan.label or 'fp32'})"] = torch_run(use_channels_last, plan.bf16_autocast)
    runs.update({name: ov_run(model) for name, model in compiled.items()})
    times: dict[str, list[float]] = {name: [] for name in runs}
    outputs = {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            outputs[name], seconds = run()
            times[name].append(seconds)
            print(f"  {kind} {name:<50} {times[name][-1]:6.2f} s", flush=True)
    base = statistics.median(times["torch fp32 eager"])
    reference = outputs["torch fp32 eager"]
    print(f"\n{kind}, median of {args.repeats} interleaved, load average {os.getloadavg()[0]:.1f}")
    extra = "max levels  PSNR dB" if kind == "vae" else "rel.err   max abs"
    print(f"{'variant':<50}{'median s':>9}{'vs eager':>9}  {extra}")
    for name in runs:
        med = statistics.median(times[name])
        if kind == "vae":
            worst, db = compare(outputs[name], reference)
            tail = f"{worst:10d}{db:9.1f}"
        else:
            worst_abs = float((outputs[name] - reference).abs().max())
            tail = f"{relative_error(outputs[name], reference):9.2e}{worst_abs:10.2e}"
        print(f"{name:<50}{med:9.2f}{med / base:9.2f}  {tail}", flush=True)
    print()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--only", choices=("unet", "vae"))
    args = parser.parse_args()
    import openvino
    import torch

    print(
        f"openvino {openvino.__version__}, torch {torch.__version__}, capability "
        f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads"
    )
    for kind in ("unet", "vae"):
        if args.only in (None, kind):
            measure(kind, args)


if __name__ == "__main__":
    main()
