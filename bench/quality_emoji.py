"""Quality of the bundled emoji model, measured the way its model card reports it.

    python3 bench/quality_emoji.py --model resources/models/emoji-ldm --data runs/data/emoji \
        [--json runs/emoji/ldm/quality.json] [--grid runs/emoji/ldm/quality_grid.png]

Prints: the autoencoder's PSNR on the held-out emoji (``holdout.txt``) at the model's resolution;
prompt fidelity (for each prompt, 4 generated images are looked up among all training images by
nearest neighbour in a simple feature space — 8x8 average colours, cosine — and a hit is the prompted emoji
among the 5 nearest), next to the same lookup for real images of one style against the other style
(what the metric can show at best); and the seconds for one image (20 steps, guidance 4).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Distinctive objects, animals and food (no smileys, people or flags); each is a caption in the data.
PROMPTS = (
    "banana",
    "pizza",
    "strawberry",
    "watermelon",
    "grapes",
    "red apple",
    "pineapple",
    "carrot",
    "hamburger",
    "doughnut",
    "cherries",
    "lemon",
    "avocado",
    "broccoli",
    "birthday cake",
    "hot pepper",
    "ear of maize",
    "croissant",
    "cookie",
    "mushroom",
    "dog face",
    "cat face",
    "pig face",
    "frog face",
    "octopus",
    "penguin",
    "turtle",
    "snail",
    "butterfly",
    "snake",
    "elephant",
    "unicorn face",
    "lady beetle",
    "tropical fish",
    "honeybee",
    "tiger face",
    "rocket",
    "balloon",
    "soccer ball",
    "guitar",
    "electric light bulb",
    "alarm clock",
    "umbrella",
    "crown",
    "gem stone",
    "key",
    "bell",
    "books",
    "anchor",
    "bomb",
    "cactus",
    "sunflower",
    "four leaf clover",
    "christmas tree",
    "rainbow",
    "snowman",
    "fire",
    "ghost",
)
IMAGES_PER_PROMPT = 4
TOP_K = 5


def features(images):  # N x 3 x H x W in [-1, 1] -> N x 192, unit length
    """8x8 average colours minus white, compared by direction (cosine): the white background and
    the object's size weigh less. Of the simple spaces tried (4x4, 8x8, 16x16 and blurred averages,
    colour histograms) it found the same emoji across the two styles most often (49 % vs 39 % for
    plain 8x8 averages)."""
    import torch.nn.functional as F

    return F.normalize(F.adaptive_avg_pool2d(images.float() - 1, 8).flatten(1), dim=1)


def nearest(query, reference, k: int):
    import torch

    return torch.cdist(query, reference).topk(k, largest=False).indices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("resources/models/emoji-ldm"))
    parser.add_argument("--data", type=Path, default=Path("runs/data/emoji"))
    parser.add_argument("--json", type=Path, help="also write the figures here (the model card reads them)")
    parser.add_argument("--grid", type=Path, help="write the generated images as a grid PNG")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--guidance", type=float, default=4.0)
    args = parser.parse_args()

    import torch
    from diffusers import DPMSolverMultistepScheduler

    from ldm_studio.engine.loader import load_model
    from ldm_studio.training.image_folder import load_images, read_captioned_folder, read_holdout
    from ldm_studio.training.run_log import image_grid, to_uint8
    from ldm_studio.training.vae_training import psnr, reconstruct, to_model_input

    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = load_model(args.model, device="cpu", dtype="float32").pipe
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    size = int(pipe.unet.config.sample_size) * pipe.vae_scale_factor

    items = read_captioned_folder(args.data)
    images = to_model_input(load_images(items, size))
    held = read_holdout(args.data)
    held_mask = torch.tensor([item.path in held for item in items])
    figures: dict[str, float | int] = {}
    if held_mask.any():
        figures.update(psnr(images[held_mask], reconstruct(pipe.vae, images[held_mask])))
        print(
            f"autoencoder: held-out PSNR {figures['psnr_db']:.2f} dB "
            f"(mean per image {figures['psnr_mean_per_image_db']:.2f} dB) over {figures['images']} images"
        )

    reference_features = features(images)
    emoji_of = [item.path.stem for item in items]  # the same code point in both styles
    style_of = [item.path.parent.name for item in items]
    generated, hits, reference_hits, reference_total = [], 0, 0, 0
    for prompt in PROMPTS:
        wanted = {emoji_of[i] for i, item in enumerate(items) if prompt in item.captions}
        if not wanted:
            raise SystemExit(f"prompt {prompt!r} is no caption in {args.data}")
        generators = [torch.Generator().manual_seed(seed) for seed in range(IMAGES_PER_PROMPT)]
        output = pipe(
            [prompt] * IMAGES_PER_PROMPT,
            height=size,
            width=size,
            num_inference_steps=20,
            guidance_scale=args.guidance,
            generator=generators,
            output_type="pt",
        ).images
        output = output * 2 - 1
        generated.append(output)
        for row in nearest(features(output), reference_features, TOP_K):
            hits += any(emoji_of[i] in wanted for i in row.tolist())
        # Reference: a real image of one style, looked up among the images of the other style.
        for style in sorted(set(style_of)):
            query = [i for i in range(len(items)) if emoji_of[i] in wanted and style_of[i] == style]
            others = [i for i in range(len(items)) if style_of[i] != style]
            if not query:
                continue
            found = nearest(features(images[query]), reference_features[others], TOP_K)
            for row in found:
                reference_hits += any(emoji_of[others[i]] in wanted for i in row.tolist())
                reference_total += 1
    figures["prompts"] = len(PROMPTS)
    figures["fidelity_top5"] = hits / (len(PROMPTS) * IMAGES_PER_PROMPT)
    figures["reference_top5"] = reference_hits / max(1, reference_total)
    print(
        f"prompt fidelity: {figures['fidelity_top5']:.1%} of {len(PROMPTS)}x{IMAGES_PER_PROMPT} images "
        f"have the prompted emoji among their {TOP_K} nearest training images"
    )
    print(f"reference (real images, one style looked up in the other): {figures['reference_top5']:.1%}")
    if args.grid:
        tiles = list(to_uint8(torch.cat(generated).numpy()))
        image_grid(tiles, columns=IMAGES_PER_PROMPT * 4, scale=2).save(args.grid)

    timings = []
    for repeat in range(4):
        start = time.perf_counter()
        pipe(
            "red apple",
            height=size,
            width=size,
            num_inference_steps=20,
            guidance_scale=args.guidance,
            generator=torch.Generator().manual_seed(repeat),
        )
        timings.append(time.perf_counter() - start)
    figures["seconds_per_image"] = statistics.median(timings[1:])  # the first call warms up
    figures["torch_threads"] = torch.get_num_threads()
    print(
        f"one image, 20 steps with guidance: {figures['seconds_per_image']:.2f} s "
        f"(median of 3 after a warm-up, {figures['torch_threads']} torch threads)"
    )
    training_file = args.model / "training.json"
    if training_file.is_file():
        figures["denoiser_steps"] = json.loads(training_file.read_text()).get("denoiser_steps")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
