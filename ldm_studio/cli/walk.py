"""``ldm-studio walk``: a latent walk between two seeds and/or two prompts, as an animation."""

from __future__ import annotations

import argparse
from pathlib import Path

from ldm_studio.cli import CliError
from ldm_studio.cli.generate import add_threads_option
from ldm_studio.engine.samplers import sampler_names


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "walk",
        help="animate a walk between two seeds and/or prompts",
        description="Interpolate the starting noise (spherically) between two seeds and the text "
        "between two prompts; write every frame as a PNG and the animation to --out.",
    )
    parser.add_argument("--model", help="model folder or checkpoint file (default: the bundled model)")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--to-prompt", default="", help="the prompt at the end (default: the same)")
    parser.add_argument("--negative", default="")
    parser.add_argument("--from-seed", type=int, required=True)
    parser.add_argument("--to-seed", type=int, required=True)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=7.0)
    parser.add_argument("--sampler", default="DPM++ 2M", choices=sampler_names(), metavar="NAME")
    parser.add_argument("--width", type=int)
    parser.add_argument("--height", type=int)
    parser.add_argument("--fps", type=float, default=8.0)
    parser.add_argument("--hold", type=float, default=0.5, help="seconds to hold the last frame")
    parser.add_argument("--frames-dir", type=Path, help="folder for the frames (default: beside --out)")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    add_threads_option(parser)
    parser.add_argument("--out", required=True, type=Path, help="OUT.webp, OUT.gif or OUT.mp4")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ldm_studio.engine.animation import FORMATS

    if args.out.suffix.lower() not in FORMATS:
        raise CliError("--out must end in .webp, .gif or .mp4", status=2)
    from ldm_studio.engine.request import GenerationRequest

    try:
        start = GenerationRequest(
            prompt=args.prompt,
            negative_prompt=args.negative,
            seed=args.from_seed,
            steps=args.steps,
            guidance=args.cfg,
            width=args.width,
            height=args.height,
            sampler=args.sampler,
        )
        GenerationRequest(args.prompt, seed=args.to_seed)  # validates the range
    except ValueError as error:
        raise CliError(str(error), status=2) from error
    if args.frames < 2:
        raise CliError("--frames must be at least 2", status=2)

    from ldm_studio.cli.generate import resolve_model
    from ldm_studio.cli.progress import ProgressBar
    from ldm_studio.engine.animation import export_animation
    from ldm_studio.engine.device import set_cpu_threads
    from ldm_studio.engine.errors import GenerationError, ModelLoadError
    from ldm_studio.engine.loader import load_model
    from ldm_studio.engine.walk import WalkRequest, walk
    from ldm_studio.paths import user_dirs

    set_cpu_threads(args.threads)
    try:
        model = load_model(
            resolve_model(args.model), device=args.device, cache_dir=user_dirs().cache / "previews"
        )
    except ModelLoadError as error:
        raise CliError(str(error)) from error
    frames_dir = args.frames_dir or args.out.with_name(f"{args.out.stem}_frames")
    try:
        frames_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(f"cannot create {frames_dir}: {error.strerror or error}") from error
    bar = ProgressBar()
    import time

    started = time.perf_counter()

    def save_frame(index: int, total: int, image) -> None:
        image.save(frames_dir / f"frame_{index:04d}.png")
        bar.update(index, total, time.perf_counter() - started, "frames ")

    try:
        frames = walk(
            model, WalkRequest(start, args.to_seed, args.to_prompt, args.frames), on_frame=save_frame
        )
        path = export_animation(frames, args.out, fps=args.fps, hold_last=args.hold)
    except GenerationError as error:
        raise CliError(str(error)) from error
    finally:
        bar.close()
    print(frames_dir, flush=True)
    print(path, flush=True)
    return 0
