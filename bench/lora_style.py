"""Does the OpenMoji style LoRA draw emoji the OpenMoji way? Measured as the LoRA's model card reports it.

    python3 bench/lora_style.py --lora resources/loras/openmoji-style/openmoji-style.safetensors \
        [--openmoji runs/data/openmoji] [--emoji runs/data/emoji] [--json OUT.json] [--grid OUT.png]

For each prompt (emoji held out of the LoRA's training, plus emoji it saw), images are generated through
the engine with ``<lora:openmoji-style:1>`` and with weight 0. Each image is compared, in a simple
colour + edge feature space, with the three drawings of the prompted emoji — OpenMoji's, Twemoji's and
Noto's — and counts as OpenMoji-like when OpenMoji's drawing is the nearest. Weight 0 must give exactly
the base model's pixels (checked). Prints both rates and the seconds per image.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STYLES = ("openmoji", "twemoji", "noto")
SEEDS = 2
HELD_OUT_PROMPTS = 40
SEEN_PROMPTS = 12


def features(images):  # N x 3 x H x W in [-1, 1] -> N x D, unit length
    """8x8 colours (minus white, as bench/quality_emoji.py) beside 8x8 edge strength: OpenMoji's black
    outlines are what tells its drawings from the other two styles most plainly."""
    import torch
    import torch.nn.functional as F

    images = images.float()
    colour = F.normalize(F.adaptive_avg_pool2d(images - 1, 8).flatten(1), dim=1)
    grey = images.mean(dim=1, keepdim=True)
    dx = (grey[..., :, 1:] - grey[..., :, :-1]).abs()[..., :-1, :]
    dy = (grey[..., 1:, :] - grey[..., :-1, :]).abs()[..., :, :-1]
    edges = F.normalize(F.adaptive_avg_pool2d(dx + dy, 8).flatten(1), dim=1)
    return torch.cat([colour, edges], dim=1)


def load(path: Path, size: int):
    import numpy as np
    import torch
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGBA")
        white = Image.new("RGBA", rgb.size, (255, 255, 255, 255))
        array = np.asarray(Image.alpha_composite(white, rgb).convert("RGB").resize((size, size)))
    return torch.from_numpy(array).permute(2, 0, 1).float() / 127.5 - 1


def prompts(openmoji: Path, emoji: Path) -> list[tuple[str, str, bool]]:
    """(caption, emoji file stem, held out of LoRA training) for emoji drawn in all three styles."""
    from ldm_studio.training.image_folder import read_captioned_folder, read_holdout

    items = read_captioned_folder(openmoji)
    held = read_holdout(openmoji)
    present = {
        stem
        for stem in (item.path.stem for item in items)
        if all((emoji / style / f"{stem}.png").is_file() for style in STYLES[1:])
    }
    # a caption such as "keycap: 0" ends in what A1111 reads as a composable-diffusion weight
    usable = [
        item for item in items if item.path.stem in present and item.captions and ":" not in item.captions[0]
    ]
    held_items = [item for item in usable if item.path in held]
    seen_items = [item for item in usable if item.path not in held]
    pick = lambda group, count: group[:: max(1, len(group) // count)][:count]  # noqa: E731
    return [(item.captions[0], item.path.stem, True) for item in pick(held_items, HELD_OUT_PROMPTS)] + [
        (item.captions[0], item.path.stem, False) for item in pick(seen_items, SEEN_PROMPTS)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("resources/models/emoji-ldm"))
    parser.add_argument("--lora", type=Path, required=True)
    parser.add_argument("--openmoji", type=Path, default=Path("runs/data/openmoji"))
    parser.add_argument("--emoji", type=Path, default=Path("runs/data/emoji"))
    parser.add_argument("--weight", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--grid", type=Path, help="prompts × (base, LoRA, OpenMoji, Twemoji, Noto)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from ldm_studio.engine.device import set_cpu_threads
    from ldm_studio.engine.events import Finished
    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.loader import load_model
    from ldm_studio.engine.networks import NETWORK_FILES_KEY, NetworkLibrary
    from ldm_studio.engine.request import GenerationRequest

    set_cpu_threads()
    model = load_model(args.model, device="cpu", dtype="float32")
    size = model.native_size
    library = NetworkLibrary([], [], [args.lora.resolve()])
    name = args.lora.stem
    chosen = prompts(args.openmoji, args.emoji)
    rows, results, seconds, count = [], {"lora": [], "base": []}, 0.0, 0
    for caption, stem, held in chosen:
        drawn = {}
        for label, weight in (("base", 0.0), ("lora", args.weight)):
            request = GenerationRequest(
                f"{caption} <lora:{name}:{weight:g}>",
                seed=0,
                steps=20,
                guidance=4.0,
                sampler="DPM++ 2M",
                batch_size=SEEDS,
                extras={NETWORK_FILES_KEY: [str(args.lora.resolve())]},
            )
            started = time.perf_counter()
            result = generate(model, request, networks=library)
            seconds += time.perf_counter() - started
            count += SEEDS
            if not isinstance(result, Finished):
                raise SystemExit(f"{caption}: {result}")
            drawn[label] = torch.stack(
                [
                    torch.from_numpy(np.asarray(image)).permute(2, 0, 1).float() / 127.5 - 1
                    for image in result.images
                ]
            )
        plain = generate(
            model,
            GenerationRequest(caption, seed=0, steps=20, guidance=4.0, sampler="DPM++ 2M", batch_size=SEEDS),
        )
        plain_pixels = np.stack([np.asarray(image) for image in plain.images])
        base_pixels = ((drawn["base"] + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
        if not np.array_equal(plain_pixels, base_pixels):
            raise SystemExit(f"{caption}: weight 0 did not give the base model's pixels")
        references = torch.stack(
            [
                load(args.emoji / style / f"{stem}.png", size)
                if style != "openmoji"
                else load(args.openmoji / "openmoji" / f"{stem}.png", size)
                for style in STYLES
            ]
        )
        reference_features = features(references)
        for label in ("base", "lora"):
            distances = torch.cdist(features(drawn[label]), reference_features)
            results[label].extend((held, bool(index == 0)) for index in distances.argmin(dim=1).tolist())
        rows.append((drawn["base"][0], drawn["lora"][0], *references))

    def rate(label: str, held: bool | None = None) -> float:
        picked = [hit for is_held, hit in results[label] if held is None or is_held == held]
        return sum(picked) / max(1, len(picked))

    figures = {
        "prompts": len(chosen),
        "images_per_prompt": SEEDS,
        "openmoji_nearest_with_lora_held_out": rate("lora", True),
        "openmoji_nearest_with_lora_seen": rate("lora", False),
        "openmoji_nearest_base_held_out": rate("base", True),
        "openmoji_nearest_base_seen": rate("base", False),
        "weight_0_is_the_base_model": True,
        "seconds_per_image": seconds / max(1, count),
        "cpu": torch.backends.cpu.get_cpu_capability(),
    }
    for key, value in figures.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    if args.grid:
        from ldm_studio.training.run_log import image_grid, to_uint8

        tiles = torch.stack([tile for row in rows[:16] for tile in row])
        image_grid(list(to_uint8(tiles.numpy())), columns=5, scale=2).save(args.grid)


if __name__ == "__main__":
    main()
