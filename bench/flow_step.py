"""Issue 15: one 512x512 denoising step (CFG on: batch 2) of an SD 3.5 Medium-sized transformer with
random weights, through LDM Studio's engine against a bare diffusers StableDiffusion3Pipeline on the
same weights, interleaved, on the precision path "auto" picks on this CPU (engine.cpu_speed) and the
same autocast for diffusers; then the memory each precision needs.

    nice python3 bench/flow_step.py [--repeats 3] [--steps 3] [--threads N]
    python3 bench/flow_step.py --dry-run   # the full-size config on the meta device: no memory
    python3 bench/flow_step.py --quick     # a tiny transformer at 64x64: the whole script in < 1 min

Only the transformer step is timed (bench/sd15_size.py's StepClock: from one transformer call to the
next, the last to the VAE decode), so the text encoders are left out: both paths get the same
precomputed random prompt embeddings of SD 3's shapes (CLIP-L+G padded, then 256 T5 tokens, 4096
wide; pooled 768+1280 = 2048), and the VAE is a small 16-channel AutoencoderKL with SD 3's 8x factor.
The first step of each run carries autocast's one-off weight casts and the last the scheduler's
end and the hand-over to the decode (~0.25 s here on the tiny model), so the median is over the
steps between them (--steps 3: one per run).

SD 3.5 Medium's transformer config (MEDIUM below): diffusers' single-file converter derives
num_layers, dual_attention_layers (the blocks with ``attn2``), caption_projection_dim
(``context_embedder`` rows) and qk_norm (``ln_q``) from the checkpoint
(diffusers/loaders/single_file_utils.py, ``convert_sd3_transformer_checkpoint_to_diffusers``); the
values are the published stabilityai/stable-diffusion-3.5-medium transformer/config.json as public
loaders reproduce it (24 layers, 24 heads of 64, dual attention in blocks 0-12, pos_embed_max_size
384). Memory: peak RSS of one engine run with fp32 and with bf16 weights, each in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MEDIUM = {
    "sample_size": 128,
    "patch_size": 2,
    "in_channels": 16,
    "num_layers": 24,
    "attention_head_dim": 64,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "caption_projection_dim": 1536,
    "pooled_projection_dim": 2048,
    "out_channels": 16,
    "pos_embed_max_size": 384,
    "dual_attention_layers": tuple(range(13)),
    "qk_norm": "rms_norm",
}
TINY = {
    **MEDIUM,
    "sample_size": 8,
    "num_layers": 2,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 64,
    "caption_projection_dim": 32,
    "pooled_projection_dim": 32,
    "pos_embed_max_size": 16,
    "dual_attention_layers": (0,),
}
TEXT_TOKENS = {"full": 77 + 256, "quick": 16}  # SD 3: 77 CLIP tokens, then max_sequence_length T5
# SD 3.5's scheduler config (shift 3, no dynamic shifting) and VAE latent scaling
SCHEDULER = {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": False}
PRECISIONS = ("float32", "bfloat16", "float16", "fp8", "Q8_0", "Q4_0")


def transformer_config(quick: bool) -> dict:
    return TINY if quick else MEDIUM


def small_vae():  # noqa: ANN201
    """16 latent channels and SD 3's 8x factor (four blocks), but narrow: only its shapes must fit."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=8,
        scaling_factor=1.5305,
        shift_factor=0.0609,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def build_pipeline(quick: bool, dtype: str = "float32"):  # noqa: ANN201
    """StableDiffusion3Pipeline with a random SD 3.5 Medium-sized (or tiny) transformer and no text
    encoders (both paths get precomputed embeddings)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    torch.manual_seed(0)
    pipe = StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(**transformer_config(quick)).eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
        vae=small_vae().eval(),
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
        text_encoder_3=None,
        tokenizer_3=None,
    )
    pipe.set_progress_bar_config(disable=True)
    if dtype == "bfloat16":
        pipe.to(torch.bfloat16)
    return pipe


def prompt_embeds(pipe, quick: bool) -> dict:  # noqa: ANN001
    """Random [negative, positive] text of SD 3's shapes for this transformer, fixed by a seed."""
    import torch

    config = pipe.transformer.config
    dtype = pipe.transformer.dtype
    generator = torch.Generator().manual_seed(7)
    tokens = TEXT_TOKENS["quick" if quick else "full"]
    embeds = torch.randn(2, tokens, config.joint_attention_dim, generator=generator).to(dtype)
    pooled = torch.randn(2, config.pooled_projection_dim, generator=generator).to(dtype)
    return {"embeds": embeds, "pooled": pooled}


def engine_model(pipe, dtype_choice: str):  # noqa: ANN001, ANN201
    """The pipeline as the engine holds a loaded SD 3 model, laid out as load_model lays it out."""
    import numpy as np
    import torch

    from bench.sd15_size import loaded_model
    from ldm_studio.engine.cpu_speed import apply_layout, cpu_speed_plan, unet_width
    from ldm_studio.engine.device import Placement
    from ldm_studio.engine.preview import LatentProjection

    plan = cpu_speed_plan("cpu", dtype_choice, unet_width(pipe))
    apply_layout(pipe, plan)
    projection = LatentProjection(np.eye(16, 3, dtype=np.float32), np.zeros(3, dtype=np.float32))
    model = loaded_model(pipe, projection)
    model.name, model.path, model.family = "sd35m-random", Path("sd35m-random"), "sd3"
    model.placement = Placement(torch.device("cpu"), pipe.transformer.dtype)
    model.dtype_choice = dtype_choice
    return model, plan


def runners(pipe, model, plan, text: dict, size: int, steps: int) -> dict:  # noqa: ANN001
    """Both paths, one request each: bare diffusers and our engine, same weights, text and seed."""
    import torch

    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.generation.text_conditioning import Conditioning
    from ldm_studio.engine.preview import PreviewSettings
    from ldm_studio.engine.request import GenerationRequest

    conditioning = Conditioning(text["embeds"], {"pooled_projections": text["pooled"]})

    def bare() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=plan.bf16_autocast):
            pipe(
                prompt_embeds=text["embeds"][1:],
                negative_prompt_embeds=text["embeds"][:1],
                pooled_prompt_embeds=text["pooled"][1:],
                negative_pooled_prompt_embeds=text["pooled"][:1],
                num_inference_steps=steps,
                guidance_scale=4.5,
                height=size,
                width=size,
                generator=torch.Generator().manual_seed(1),
                output_type="np",
            )

    def ours() -> None:
        request = GenerationRequest(
            "", seed=1, steps=steps, guidance=4.5, sampler="Euler", width=size, height=size
        )
        result = generate(model, request, preview=PreviewSettings("fast"), conditioning=conditioning)
        if type(result).__name__ != "Finished":
            raise RuntimeError(f"engine run did not finish: {result}")

    return {"bare diffusers pipeline": bare, "LDM Studio engine": ours}


def timing(args: argparse.Namespace) -> dict:
    """Interleaved runs of both paths; seconds of the steps between each run's first and last."""
    import torch

    from bench.sd15_size import StepClock

    torch.set_grad_enabled(False)
    pipe = build_pipeline(args.quick)
    model, plan = engine_model(pipe, "auto")
    text = prompt_embeds(pipe, args.quick)
    clock = StepClock(SimpleNamespace(unet=pipe.transformer, vae=pipe.vae))  # its hooks, on the DiT
    for run in runners(pipe, model, plan, text, 64, 1).values():  # first-call set-up, at a small size
        run()
    runs = runners(pipe, model, plan, text, args.size, args.steps)
    per_step: dict[str, list[float]] = {name: [] for name in runs}
    first: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            clock.reset()
            run()
            steps = clock.steps()
            first[name].append(steps[0])
            per_step[name].extend(steps[1:-1] or steps)  # neither first nor last (see top)
            print(f"  {name}: {[round(s, 3) for s in steps]}", file=sys.stderr, flush=True)
    return {
        "medians": {name: statistics.median(values) for name, values in per_step.items()},
        "first": {name: statistics.median(values) for name, values in first.items()},
        "path": plan.label or "float32",
        "parameters": sum(p.numel() for p in pipe.transformer.parameters()),
    }


def _status_bytes(field: str) -> int:
    """A /proc/self/status size (VmRSS, VmHWM) in bytes; 0 where there is no /proc (not Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_memory(args: argparse.Namespace) -> dict:
    """One engine request with fp32, bf16 or fp8-kept weights (fp8: stored e4m3, computed in bf16 by
    engine.checkpoints.fp8_weights); the resident memory once the weights are placed, and the peak
    during the step alone (Linux: /proc/self/clear_refs resets the high-water mark after the build,
    whose fp32 start would hide it)."""
    import gc

    import torch

    from ldm_studio.engine.checkpoints.fp8_weights import keep_in_fp8

    torch.set_grad_enabled(False)
    weights = args.memory_child
    pipe = build_pipeline(args.quick, "bfloat16" if weights == "fp8" else weights)
    if weights == "fp8":
        pipe.transformer.to(torch.float8_e4m3fn)
        keep_in_fp8(pipe.transformer, torch.bfloat16)
    model, plan = engine_model(pipe, "bfloat16" if weights == "fp8" else weights)
    text = prompt_embeds(pipe, args.quick)
    gc.collect()
    resident = _status_bytes("VmRSS")
    build_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # before clear_refs resets it
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    started = time.perf_counter()
    runners(pipe, model, plan, text, args.size, 1)["LDM Studio engine"]()
    return {
        "dtype": weights,
        "seconds": time.perf_counter() - started,
        "resident": resident,
        "step_peak": _status_bytes("VmHWM"),
        "peak_rss": max(build_peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
    }


def transformer_bytes(quick: bool) -> dict:
    """Parameter bytes of the transformer per precision, counted on the meta device (no memory):
    stored element sizes for float32/bf16/fp16/fp8 e4m3; GGUF Q8_0/Q4_0 block sizes (from the gguf
    package where installed) for tensors of 2+ dims whose rows split into blocks, F32 for the rest
    (biases, norms). Counted over the state dict, as a file stores it: that includes the 384x384
    positional-embedding buffer (226 M values at full size) beside the parameters."""
    import torch
    from diffusers import SD3Transformer2DModel

    with torch.device("meta"):
        transformer = SD3Transformer2DModel(**transformer_config(quick))
    tensors = list(transformer.state_dict().values())
    total = sum(t.numel() for t in tensors)
    learned = sum(p.numel() for p in transformer.parameters())
    sizes = {
        "float32": 4,
        "bfloat16": 2,
        "float16": 2,
        "fp8": torch.empty(0, dtype=torch.float8_e4m3fn).element_size(),
    }
    found = {name: total * size for name, size in sizes.items()}
    try:
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    except ImportError:
        return {"parameters": total, "learned": learned, "bytes": found, "gguf": False}
    for name in ("Q8_0", "Q4_0"):
        block, block_bytes = GGML_QUANT_SIZES[getattr(GGMLQuantizationType, name)]
        quantised = sum(t.numel() for t in tensors if t.dim() >= 2 and t.shape[-1] % block == 0)
        found[name] = int(quantised * block_bytes / block + (total - quantised) * 4)
    return {"parameters": total, "learned": learned, "bytes": found, "gguf": True}


def spawn(extra: list[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, *extra], capture_output=True, text=True, check=False)
    sys.stderr.write(done.stderr[-2000:] if done.returncode else "")
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    raise RuntimeError(f"{' '.join(extra)} failed:\n{done.stderr[-3000:]}")


def print_memory(quick: bool) -> None:
    from ldm_studio.engine.flow_models import memory_needed

    counted = transformer_bytes(quick)
    parameters = counted["parameters"]
    print(
        f"transformer ({'tiny' if quick else 'SD 3.5 Medium'} config): {parameters:,} stored values, "
        f"of which {counted['learned']:,} parameters (the rest: the positional-embedding buffer)"
    )
    unit, scale = ("MB", 1e6) if quick else ("GB", 1e9)
    print(f"{'precision':<10}{'weights ' + unit:>11}{'B/param':>9}{'memory_needed ' + unit:>18}")
    for name, needed in zip(
        PRECISIONS, ("float32", "bfloat16", "float16", "fp8", "Q8_0", "Q4_0"), strict=True
    ):
        stored = counted["bytes"].get(name)
        shown = f"{stored / scale:11.3f}{stored / parameters:9.3f}" if stored else f"{'-':>11}{'-':>9}"
        estimate = memory_needed({"transformer": parameters}, needed)
        print(f"{name:<10}{shown}{estimate / scale:18.3f}")
    if not counted["gguf"]:
        print("(Q8_0 / Q4_0 measured sizes need the gguf package: pip install gguf)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny transformer at 64x64 (< 1 minute)")
    parser.add_argument("--dry-run", action="store_true", help="count the config's parameters; run nothing")
    parser.add_argument("--size", type=int, default=0, help="image side (default 512; --quick: 64)")
    parser.add_argument(
        "--steps", type=int, default=3, help="steps per run; first and last not in the median"
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each path")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (default: torch's choice; --quick: 1)"
    )
    parser.add_argument("--timing-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory-child", choices=("float32", "bfloat16", "fp8"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.size = args.size or (64 if args.quick else 512)
    # --quick runs beside other jobs: two spinning OpenMP threads there made a 5 ms step 0.4 s
    args.threads = args.threads or (1 if args.quick else 0)
    if args.timing_child or args.memory_child:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        found = timing(args) if args.timing_child else peak_memory(args)
        print("RESULT " + json.dumps(found), flush=True)
        return

    import torch

    print(
        f"{'tiny' if args.quick else 'SD 3.5 Medium-sized'} random transformer, {args.size}x{args.size}, "
        f"CFG (batch 2), torch "
        f"{torch.__version__}, threads {args.threads or torch.get_num_threads()}, capability "
        f"{torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print_memory(args.quick)
    if args.dry_run:
        return
    common = ["--size", str(args.size), "--threads", str(args.threads)] + (["--quick"] if args.quick else [])
    found = spawn(["--timing-child", "--steps", str(args.steps), "--repeats", str(args.repeats), *common])
    bare, ours = found["medians"]["bare diffusers pipeline"], found["medians"]["LDM Studio engine"]
    print(
        f"\nper-step ({found['path']}), median of {args.repeats}x{max(args.steps - 2, 1)} steps interleaved: "
        f"bare {bare:.3f} s, ours {ours:.3f} s, ratio {ours / bare:.3f} (goal <= 1.05); first step "
        f"bare {found['first']['bare diffusers pipeline']:.3f} s, "
        f"ours {found['first']['LDM Studio engine']:.3f} s"
    )
    for dtype in ("float32", "bfloat16", "fp8"):
        memory = spawn(["--memory-child", dtype, *common])
        print(
            f"{dtype} weights: resident after placing them {memory['resident'] / 1e9:.2f} GB, peak during "
            f"one engine step {memory['step_peak'] / 1e9:.2f} GB ({memory['seconds']:.1f} s), peak of the "
            f"whole process {memory['peak_rss'] / 1e9:.2f} GB"
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
