"""What applying, re-weighting and removing a LoRA costs, next to one denoising step, in one run.

    nice python3 bench/lora_switch.py [--model sd15|small] [--rank 16] [--size 512] [--threads N]

``sd15``: the SD 1.5-sized random model of bench/sd15_size.py (UNet, VAE and CLIP-L shapes; building it
takes a while and ~4 GB of RAM). ``small``: bench/models.py's small SD model, for a quick dry run.
The LoRA is random, kohya-named, rank ``--rank`` on every Linear / 1×1 conv of the UNet's transformer
blocks and of CLIP's attention and MLP (what kohya's default ``networks.lora`` trains). The step is one
UNet call with CFG (batch 2) at ``--size``. Figures are seconds and ratios against that step.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build(kind: str, scratch: Path):  # noqa: ANN201
    if kind == "sd15":
        from bench.sd15_size import build_pipeline

        return build_pipeline()
    from diffusers import StableDiffusionPipeline

    from bench.models import build_small_sd

    return StableDiffusionPipeline.from_pretrained(
        build_small_sd(scratch / "small-sd"), local_files_only=True
    )


def random_kohya_lora(pipe, rank: int, seed: int = 0) -> dict:  # noqa: ANN001
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(seed)
    tensors = {}

    def add(name: str, weight: torch.Tensor) -> None:
        shape_in = (rank, weight.shape[1], *weight.shape[2:])
        shape_up = (weight.shape[0], rank, *([1] * (weight.dim() - 2)))
        tensors[f"{name}.lora_down.weight"] = torch.randn(shape_in, generator=generator).half() * 0.01
        tensors[f"{name}.lora_up.weight"] = torch.randn(shape_up, generator=generator).half() * 0.01
        tensors[f"{name}.alpha"] = torch.tensor(rank / 2)

    for path, module in pipe.unet.named_modules():
        one_by_one = isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1)
        if ".attentions." in f".{path}" and (isinstance(module, nn.Linear) or one_by_one):
            add("lora_unet_" + path.replace(".", "_"), module.weight)
    for path, module in pipe.text_encoder.named_modules():
        if isinstance(module, nn.Linear) and ("self_attn" in path or "mlp" in path):
            full = path if path.startswith("text_model.") else f"text_model.{path}"
            add("lora_te_" + full.replace(".", "_"), module.weight)
    return tensors


def timed(action) -> float:  # noqa: ANN001
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=("sd15", "small"), default="sd15")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    import torch
    from safetensors.torch import save_file

    from ldm_studio.engine.lora import LoraStack, ModelParts

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        pipe = build(args.model, Path(scratch))
        built = time.perf_counter() - started
        print(f"model {args.model}: built in {built:.1f} s, {torch.get_num_threads()} threads")
        path = Path(scratch) / "lora.safetensors"
        save_file(random_kohya_lora(pipe, args.rank), str(path))
        print(f"LoRA: rank {args.rank}, {path.stat().st_size / 1e6:.1f} MB")

        unet = pipe.unet
        latent = args.size // 8
        sample = torch.randn(2, unet.config.in_channels, latent, latent)
        context = torch.randn(2, 77, unet.config.cross_attention_dim)
        with torch.no_grad():
            step = timed(lambda: unet(sample, torch.tensor([500, 500]), encoder_hidden_states=context))

        stack = LoraStack(ModelParts.from_pipe(pipe))
        before = {name: tensor.clone() for name, tensor in unet.state_dict().items()}
        read = timed(lambda: stack.load(path))
        network = stack.load(path)
        cached = timed(lambda: stack.load(path))
        apply = timed(lambda: stack.apply([(network, 1.0)]))
        layers = stack.patched_layers
        originals = sum(t.numel() * t.element_size() for t in stack._originals.values())  # noqa: SLF001
        reweight = timed(lambda: stack.apply([(network, 0.5)]))
        unet_only = timed(lambda: stack.apply([(network, 0.5, 0.8)]))
        remove = timed(stack.clear)
        exact = all(torch.equal(before[name], tensor) for name, tensor in unet.state_dict().items())

    print(f"UNet step (CFG, {args.size}px): {step:.3f} s")
    rows = [
        ("read + check the file", read),
        ("take it from the cache", cached),
        (f"apply at 1.0 ({layers} layers)", apply),
        ("change its weight", reweight),
        ("change the UNet weight only", unet_only),
        ("remove it", remove),
    ]
    for label, seconds in rows:
        print(f"  {label:34s} {seconds:8.3f} s   {seconds / step:6.2f} × a step")
    print(f"originals kept while applied: {originals / 1e6:.0f} MB (on the CPU)")
    print(f"weights after removal bit-identical to before: {exact}")


if __name__ == "__main__":
    main()
