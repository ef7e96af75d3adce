"""``ldm-studio generate``: text to image without the window; prints each written PNG's path."""

from __future__ import annotations

import argparse
from pathlib import Path

from ldm_studio.cli import CliError
from ldm_studio.cli.decoder_options import add_decoder_options, decoder_argument
from ldm_studio.cli.hires_options import add_hires_options, hires_argument
from ldm_studio.cli.network_options import add_network_options, network_arguments
from ldm_studio.cli.outpaint_options import add_outpaint_options, outpaint_argument, outpaint_size
from ldm_studio.cli.part_options import add_part_options, part_arguments
from ldm_studio.cli.schedule_options import (
    add_preset_option,
    add_schedule_options,
    schedule_arguments,
    with_few_step_preset,
)
from ldm_studio.cli.vae_options import add_vae_options, vae_extras
from ldm_studio.engine.samplers import DEFAULT_SAMPLER, sampler_names


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="generate images from a prompt",
        description="Generate images and write them as PNGs (with A1111-compatible parameters) to --out.",
    )
    parser.add_argument("--model", help="model folder or checkpoint file (default: the bundled model)")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--negative", default="", help="negative prompt")
    parser.add_argument("--seed", type=int, help="0..4294967295 (default: random)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=7.0, help="classifier-free guidance scale")
    parser.add_argument("--width", type=int, help="default: the model's native size")
    parser.add_argument("--height", type=int, help="default: the model's native size")
    parser.add_argument("--sampler", default=DEFAULT_SAMPLER, choices=sampler_names(), metavar="NAME")
    add_schedule_options(parser)
    add_preset_option(parser)
    parser.add_argument("--batch", type=int, default=1, help="images to generate (seeds seed, seed+1, …)")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"])
    add_threads_option(parser)
    add_network_options(parser)
    add_vae_options(parser)  # --tiled-vae, --tiling
    add_part_options(parser)  # --part NAME=PATH: a FLUX.1 single file's separate parts
    add_decoder_options(parser)  # --tiny-decoder
    add_hires_options(parser)
    parser.add_argument("--dtype", default="auto", choices=["auto", "float16", "bfloat16", "float32"])
    parser.add_argument("--out", required=True, type=Path, help="folder for the PNGs")
    source = parser.add_argument_group("image to image and inpainting")
    source.add_argument("--init-image", type=Path, help="start from this image instead of pure noise")
    source.add_argument("--strength", type=float, default=0.75, help="0 keeps the image, 1 ignores it")
    source.add_argument("--mask", type=Path, help="inpainting mask: white is repainted, black is kept")
    source.add_argument("--mask-feather", type=float, default=0.0, help="soften the mask edge (pixels)")
    source.add_argument("--resize-mode", choices=["resize", "crop", "pad"], default="resize")
    add_outpaint_options(source)
    timeline = parser.add_argument_group("denoising timeline")
    timeline.add_argument("--timeline", type=Path, help="also write the denoising as OUT.webp/.gif/.mp4")
    timeline.add_argument("--timeline-full", action="store_true", help="full VAE decode of every frame")
    timeline.add_argument("--fps", type=float, default=8.0)
    timeline.add_argument("--hold", type=float, default=1.0, help="seconds to hold the last frame")
    parser.set_defaults(run=run)


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads (default: all cores but one, so a busy CPU does not stall the generation)",
    )


def resolve_model(model: str | None) -> Path:
    if model:
        return Path(model)
    from ldm_studio.engine.catalog import default_model

    bundled = default_model()
    if bundled is None:
        raise CliError("no --model given and no bundled model is installed")
    return bundled


def run(args: argparse.Namespace) -> int:
    from ldm_studio.engine.request import GenerationRequest

    prompt, network_files = network_arguments(args)
    extras = {**source_extras(args), **vae_extras(args)}
    if network_files:
        from ldm_studio.engine.networks import NETWORK_FILES_KEY

        extras[NETWORK_FILES_KEY] = network_files
    outpaint = outpaint_argument(args)
    width, height = outpaint_size(args, outpaint)
    try:
        request = GenerationRequest(
            prompt=prompt,
            negative_prompt=args.negative,
            seed=args.seed,
            steps=args.steps,
            guidance=args.cfg,
            width=width,
            height=height,
            sampler=args.sampler,
            **schedule_arguments(args, extras),
            batch_size=args.batch,
            init_image=str(args.init_image or ""),
            strength=args.strength if args.init_image else 1.0,
            mask=str(args.mask or ""),
            clip_skip=args.clip_skip,
            tiling=args.tiling,
            hires=hires_argument(args),
            decoder=decoder_argument(args),
            outpaint=outpaint,
            extras=extras,
        )
    except ValueError as error:
        raise CliError(str(error), status=2) from error
    if (args.width is None) != (args.height is None):
        raise CliError("give both --width and --height, or neither", status=2)
    if args.mask and not args.init_image:
        raise CliError("--mask needs --init-image (the picture to inpaint)", status=2)
    for option, path in (("--init-image", args.init_image), ("--mask", args.mask)):
        if path is not None and not path.is_file():
            raise CliError(f"{option} {path} does not exist", status=2)

    from ldm_studio.cli.progress import ProgressBar
    from ldm_studio.engine.device import set_cpu_threads
    from ldm_studio.engine.errors import ModelLoadError
    from ldm_studio.engine.events import Failed, Finished, Step
    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.loader import load_model
    from ldm_studio.engine.preview import PreviewSettings
    from ldm_studio.gallery.metadata import encode_png, image_request, split_record
    from ldm_studio.gallery.store import prompt_slug, write_atomic_exclusive
    from ldm_studio.paths import user_dirs

    model_path = resolve_model(args.model)
    request = with_few_step_preset(args, model_path, request)  # --few-step: the model's own settings
    set_cpu_threads(args.threads)
    try:
        model = load_model(
            model_path,
            device=args.device,
            dtype=args.dtype,
            cache_dir=user_dirs().cache / "previews",
            file_options={"parts": part_arguments(args), "skip_memory_check": args.skip_memory_check},
        )
    except ValueError as error:  # a malformed --part
        raise CliError(str(error), status=2) from error
    except ModelLoadError as error:
        raise CliError(str(error)) from error

    bar = ProgressBar()

    def show(event: object) -> None:
        if isinstance(event, Step):
            bar.update(event.index, event.total, event.elapsed)

    try:
        result = generate(
            model, request, show, preview=PreviewSettings("off"), keep_trajectory=args.timeline is not None
        )
    finally:
        bar.close()
    if isinstance(result, Failed):
        raise CliError(result.message)
    assert isinstance(result, Finished)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(f"cannot create the output folder {args.out}: {error.strerror or error}") from error
    model_name, model_hash, extra = split_record(result.metadata)
    for index, image in enumerate(result.images):
        single = image_request(result.request, index)
        data = encode_png(image, single, model_name=model_name, model_hash=model_hash, extra=extra)
        try:
            path = write_atomic_exclusive(data, args.out / f"{single.seed}-{prompt_slug(single.prompt)}.png")
        except OSError as error:
            raise CliError(f"cannot write to {args.out}: {error.strerror or error}") from error
        print(path, flush=True)
    if args.timeline is not None:
        write_timeline(model, result, args)
    return 0


def source_extras(args: argparse.Namespace) -> dict:
    extras = {}
    if args.init_image:
        extras["resize_mode"] = args.resize_mode
    if args.mask and args.mask_feather:
        extras["mask_feather"] = args.mask_feather
    return extras


def write_timeline(model, result, args: argparse.Namespace) -> None:
    from ldm_studio.cli.progress import ProgressBar
    from ldm_studio.engine.animation import export_animation, timeline_frames
    from ldm_studio.engine.errors import GenerationError

    bar = ProgressBar()
    size = (result.request.width, result.request.height)
    try:
        frames = timeline_frames(
            model,
            result.trajectory,
            size,
            full=args.timeline_full,
            on_progress=lambda done, total: bar.update(done, total, 0.0, "frames "),
        )
    finally:
        bar.close()
    try:
        path = export_animation(frames, args.timeline, fps=args.fps, hold_last=args.hold)
    except GenerationError as error:
        raise CliError(str(error)) from error
    print(path, flush=True)
