"""Memory: peak resident memory (RSS) while the bundled model and an SD 1.5-sized model generate, and
whether unloading gives it all back (load/unload 10 times: RSS must not climb).

    nice python3 bench/memory.py [--model PATH] [--sd15-folder DIR] [--cycles 10] [--skip-sd15]

Each model is measured in its own process, through the app's backend (app.backend.TorchBackend, what
the worker thread drives): RSS after the imports, after loading, the peak while generating (sampled
every 10 ms) and after unloading; then load -> generate -> unload ``cycles`` times, printing RSS after
each unload (those generations are 64x64, 2 steps: enough to touch the whole model). The SD 1.5-sized
model has random weights (configs from resources/configs/sd1) and is written once to
``--sd15-folder`` (4.3 GB, kept for later runs).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.models import bench_model  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024
DEFAULT_SD15 = Path(tempfile.gettempdir()) / "ldm-studio-bench" / "sd15-random"


def rss() -> int:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * PAGE


class PeakRss:
    """The highest RSS within a ``with`` block, sampled every 10 ms on a helper thread."""

    def __enter__(self) -> PeakRss:
        self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


def build_sd15_folder(folder: Path) -> Path:
    """An SD 1.5-shaped diffusers folder with random weights (written once, reused)."""
    if (folder / "model_index.json").is_file():
        return folder
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from ldm_studio.paths import resource

    def config(component: str, name: str = "config.json") -> dict:
        data = json.loads(resource("configs", "sd1", component, name).read_text(encoding="utf-8"))
        return {key: value for key, value in data.items() if not key.startswith("_")}

    torch.manual_seed(0)
    tokenizer = CLIPTokenizer(
        str(resource("tokenizers", "clip", "vocab.json")),
        str(resource("tokenizers", "clip", "merges.txt")),
        pad_token="<|endoftext|>",
        model_max_length=77,
    )
    StableDiffusionPipeline(
        vae=AutoencoderKL(**config("vae")),
        text_encoder=CLIPTextModel(CLIPTextConfig(**config("text_encoder"))),
        tokenizer=tokenizer,
        unet=UNet2DConditionModel(**config("unet")),
        scheduler=EulerDiscreteScheduler.from_config(config("scheduler", "scheduler_config.json")),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(folder)
    return folder


def measure(model: Path, size: int, steps: int, cycles: int) -> None:
    """Run in a child process: one model's figures, printed as lines."""
    from ldm_studio.app.backend import TorchBackend
    from ldm_studio.engine.events import Finished
    from ldm_studio.engine.preview_settings import PreviewSettings
    from ldm_studio.engine.request import GenerationRequest

    request = GenerationRequest("a red apple", seed=1, steps=steps, guidance=5, width=size, height=size)
    # the cycles only need to touch every part of the model: a small, short generation does
    small_request = request.replace(width=64, height=64, steps=2)
    imported = rss()
    backend = TorchBackend()

    def generate(wanted: GenerationRequest = request) -> Finished:
        result = backend.generate(wanted, lambda event: None, lambda: False, PreviewSettings("fast"))
        assert isinstance(result, Finished), result
        return result

    with PeakRss() as loading:
        backend.load(model, "cpu", "auto")
    loaded = rss()
    with PeakRss() as generating:
        result = generate()
    del result
    backend.unload()
    gc.collect()
    unloaded = rss()
    print(f"model {model.name}: {size}x{size}, {steps} steps, CFG, Fast preview (the window's path)")
    print(f"  after imports {imported / MB:8.0f} MB")
    print(f"  loaded        {loaded / MB:8.0f} MB   (peak while loading {loading.peak / MB:.0f} MB)")
    extra = (generating.peak - loaded) / MB
    print(f"  generating    {generating.peak / MB:8.0f} MB peak (+{extra:.0f} MB over loaded)")
    print(
        f"  unloaded      {unloaded / MB:8.0f} MB   ({(unloaded - imported) / MB:+.0f} MB vs after imports)"
    )
    after_unload = []
    for _ in range(cycles):
        backend.load(model, "cpu", "auto")
        generate(small_request)
        backend.unload()
        gc.collect()
        after_unload.append(rss())
    listing = " ".join(f"{value / MB:.0f}" for value in after_unload)
    print(f"  {cycles} x load/generate 64x64/unload, RSS after each unload (MB): {listing}")
    half = max(1, cycles // 2)
    first, last = sum(after_unload[:half]) / half, sum(after_unload[-half:]) / half
    print(
        f"  climb: last half vs first half {(last - first) / MB:+.0f} MB; "
        f"last unload vs the first {(after_unload[-1] - unloaded) / MB:+.0f} MB"
    )


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--model")
    parser.add_argument("--sd15-folder", type=Path, default=DEFAULT_SD15)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--skip-sd15", action="store_true")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=20, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measure(args.one, args.size, args.steps, args.cycles)
        return
    with tempfile.TemporaryDirectory() as scratch:
        small = bench_model(args.model, Path(scratch))
        runs = [(small, 0, 20, args.cycles)]
        if not args.skip_sd15:
            # two steps: the peak is reached in the first step and the decode; more only take longer
            runs.append((build_sd15_folder(args.sd15_folder), 512, 2, args.cycles))
        for model, size, steps, cycles in runs:
            size = size or _native_size(model)
            command = [
                sys.executable,
                __file__,
                "--one",
                str(model),
                "--size",
                str(size),
                "--steps",
                str(steps),
            ]
            started = time.perf_counter()
            subprocess.run(
                [*command, "--cycles", str(cycles)], check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
            )
            print(f"  ({time.perf_counter() - started:.0f} s)")


def _native_size(model: Path) -> int:
    unet = json.loads((model / "unet" / "config.json").read_text(encoding="utf-8"))
    vae = json.loads((model / "vae" / "config.json").read_text(encoding="utf-8"))
    return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)


if __name__ == "__main__":
    main()
