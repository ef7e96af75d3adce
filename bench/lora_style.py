"""Does the OpenMoji style LoRA draw the prompted emoji the OpenMoji way? As its model card reports it.

    python3 bench/lora_style.py --lora resources/loras/openmoji-style/openmoji-style.safetensors \
        [--lora OTHER.safetensors ...] [--weights 0.6 0.8 1] [--openmoji runs/data/openmoji] \
        [--emoji runs/data/emoji] [--json OUT.json] [--grid OUT.png]

For each prompt (emoji held out of the LoRA's training, plus emoji it saw), images are generated through
the engine with ``<lora:NAME:W>`` for each weight, and without the LoRA. Every image is compared, in a
simple colour + edge feature space, with drawings of emoji, and scores twice:
- **style**: of the three drawings of the prompted emoji (OpenMoji's, Twemoji's, Noto's), OpenMoji's is
  the nearest;
- **object kept**: the prompted emoji is among the 5 emoji (out of all ~1,500 drawn in all three styles,
  each at its nearest drawing in any style) nearest to the image — a style LoRA must not turn a pizza
  into some other emoji. The same lookup for the real OpenMoji drawings of the held-out emoji, against
  the Twemoji and Noto drawings only, is printed as a reference for how well this feature space can
  recognise an emoji across styles at all;
- **both**: the two at once, the figure that says the LoRA works.
``<lora:NAME:0>`` must give exactly the base model's pixels (checked on the first prompts). Several
``--lora`` files share one set of base images, so candidates are compared in one run.
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
HELD_OUT_PROMPTS = 32
SEEN_PROMPTS = 8
TOP_K = 5
CHECKED_PROMPTS = 4  # weight 0 compared with the plain base model on these


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


def drawing_paths(openmoji: Path, emoji: Path, stem: str) -> list[Path]:
    """The prompted emoji's drawings in STYLES order."""
    return [openmoji / "openmoji" / f"{stem}.png"] + [emoji / style / f"{stem}.png" for style in STYLES[1:]]


def prompts(openmoji: Path, emoji: Path) -> tuple[list[tuple[str, str, bool]], list[str]]:
    """(caption, emoji file stem, held out of LoRA training) to prompt, and every stem drawn in all styles."""
    from ldm_studio.training.image_folder import read_captioned_folder, read_holdout

    items = read_captioned_folder(openmoji)
    held = read_holdout(openmoji)
    stems = sorted(
        {
            item.path.stem
            for item in items
            if all(p.is_file() for p in drawing_paths(openmoji, emoji, item.path.stem))
        }
    )
    present = set(stems)
    # a caption such as "keycap: 0" ends in what A1111 reads as a composable-diffusion weight
    usable = [
        item for item in items if item.path.stem in present and item.captions and ":" not in item.captions[0]
    ]
    held_items = [item for item in usable if item.path in held]
    seen_items = [item for item in usable if item.path not in held]
    pick = lambda group, count: group[:: max(1, len(group) // count)][:count]  # noqa: E731
    chosen = [(item.captions[0], item.path.stem, True) for item in pick(held_items, HELD_OUT_PROMPTS)] + [
        (item.captions[0], item.path.stem, False) for item in pick(seen_items, SEEN_PROMPTS)
    ]
    return chosen, stems


class Scorer:
    """Style and object scores of generated images against every emoji's three drawings."""

    def __init__(self, openmoji: Path, emoji: Path, stems: list[str], size: int) -> None:
        import torch

        self.index = {stem: row for row, stem in enumerate(stems)}
        drawings = torch.stack(
            [load(path, size) for stem in stems for path in drawing_paths(openmoji, emoji, stem)]
        )
        self.drawings = drawings.view(len(stems), len(STYLES), *drawings.shape[1:])
        self.bank = features(drawings).view(len(stems), len(STYLES), -1)  # emoji x style x D

    def score(self, images, stem: str, styles: slice = slice(None)) -> list[tuple[bool, bool]]:
        """(OpenMoji nearest of the prompted emoji's drawings, prompted emoji among the TOP_K nearest)."""
        import torch

        query = features(images)
        row = self.index[stem]
        style_hit = torch.cdist(query, self.bank[row]).argmin(dim=1) == 0
        bank = self.bank[:, styles]
        per_emoji = torch.cdist(query, bank.reshape(-1, bank.shape[-1])).view(len(query), len(bank), -1)
        nearest = per_emoji.min(dim=2).values.topk(TOP_K, largest=False).indices
        kept = (nearest == row).any(dim=1)
        return list(zip(style_hit.tolist(), kept.tolist(), strict=True))


def generate_images(model, library, caption: str, lora: Path | None, weight: float):  # noqa: ANN001, ANN201
    import numpy as np
    import torch

    from ldm_studio.engine.events import Finished
    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.networks import NETWORK_FILES_KEY
    from ldm_studio.engine.request import GenerationRequest

    prompt, extras = caption, {}
    if lora is not None:
        prompt, extras = f"{caption} <lora:{lora.stem}:{weight:g}>", {NETWORK_FILES_KEY: [str(lora)]}
    request = GenerationRequest(
        prompt, seed=0, steps=20, guidance=4.0, sampler="DPM++ 2M", batch_size=SEEDS, extras=extras
    )
    result = generate(model, request, networks=library)
    if not isinstance(result, Finished):
        raise SystemExit(f"{prompt}: {result}")
    pixels = np.stack([np.asarray(image) for image in result.images])
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1, pixels


def summarise(hits: list[tuple[bool, bool, bool]]) -> dict[str, float]:
    """Rates over (held out, style, kept) per image, for held-out and seen prompts."""
    figures = {}
    for group, held in (("held_out", True), ("seen", False)):
        picked = [(style, kept) for is_held, style, kept in hits if is_held == held]
        count = max(1, len(picked))
        figures[f"style_{group}"] = sum(style for style, _ in picked) / count
        figures[f"object_kept_{group}"] = sum(kept for _, kept in picked) / count
        figures[f"both_{group}"] = sum(style and kept for style, kept in picked) / count
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("resources/models/emoji-ldm"))
    parser.add_argument("--lora", type=Path, action="append", required=True)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.6, 0.8, 1.0])
    parser.add_argument("--openmoji", type=Path, default=Path("runs/data/openmoji"))
    parser.add_argument("--emoji", type=Path, default=Path("runs/data/emoji"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--grid", type=Path, help="prompts × (base, first LoRA at each weight, 3 drawings)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from ldm_studio.engine.device import set_cpu_threads
    from ldm_studio.engine.loader import load_model
    from ldm_studio.engine.networks import NetworkLibrary

    set_cpu_threads()
    model = load_model(args.model, device="cpu", dtype="float32")
    loras = [path.resolve() for path in args.lora]
    library = NetworkLibrary([], [], loras)
    chosen, stems = prompts(args.openmoji, args.emoji)
    scorer = Scorer(args.openmoji, args.emoji, stems, model.native_size)
    labels = ["base"] + [f"{lora.stem}@{weight:g}" for lora in loras for weight in args.weights]
    hits: dict[str, list[tuple[bool, bool, bool]]] = {label: [] for label in labels}
    rows, seconds, count = [], 0.0, 0
    for number, (caption, stem, held) in enumerate(chosen):
        drawn = {}
        started = time.perf_counter()
        drawn["base"], base_pixels = generate_images(model, library, caption, None, 0.0)
        for lora in loras:
            if number < CHECKED_PROMPTS:
                _, zero_pixels = generate_images(model, library, caption, lora, 0.0)
                if not np.array_equal(zero_pixels, base_pixels):
                    raise SystemExit(
                        f"{caption}: {lora.name} at weight 0 did not give the base model's pixels"
                    )
            for weight in args.weights:
                drawn[f"{lora.stem}@{weight:g}"], _ = generate_images(model, library, caption, lora, weight)
        seconds += time.perf_counter() - started
        count += SEEDS * len(drawn)
        for label, images in drawn.items():
            hits[label].extend((held, style, kept) for style, kept in scorer.score(images, stem))
        first = [drawn["base"][0]] + [drawn[f"{loras[0].stem}@{weight:g}"][0] for weight in args.weights]
        rows.append((*first, *scorer.drawings[scorer.index[stem]]))
        print(f"{number + 1}/{len(chosen)} {caption}", file=sys.stderr, flush=True)

    held_rows = [scorer.index[stem] for _, stem, held in chosen if held]
    reference = torch.cat(
        [
            torch.tensor(
                [kept for _, kept in scorer.score(scorer.drawings[row, :1], stems[row], slice(1, None))]
            )
            for row in held_rows
        ]
    )
    figures: dict = {
        "prompts_held_out": sum(held for *_, held in chosen),
        "prompts_seen": sum(not held for *_, held in chosen),
        "images_per_prompt": SEEDS,
        "emoji_in_the_lookup": len(stems),
        "object_kept_reference_real_openmoji_vs_twemoji_noto": float(reference.float().mean()),
        "weight_0_is_the_base_model": f"checked on {CHECKED_PROMPTS} prompts × {SEEDS} seeds",
        "seconds_per_image": seconds / max(1, count),
        "cpu": torch.backends.cpu.get_cpu_capability(),
        "results": {label: summarise(hits[label]) for label in labels},
    }
    print(json.dumps(figures, indent=1))
    print(f"{'':34} {'style':>13} {'object kept':>13} {'both':>13}   (held out / seen)")
    for label, values in figures["results"].items():
        cells = [
            f"{values[f'{k}_held_out']:6.1%}/{values[f'{k}_seen']:6.1%}"
            for k in ("style", "object_kept", "both")
        ]
        print(f"{label:34} " + " ".join(f"{cell:>13}" for cell in cells))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    if args.grid:
        from ldm_studio.training.run_log import image_grid, to_uint8

        tiles = torch.stack([tile for row in rows[:16] for tile in row])
        image_grid(list(to_uint8(tiles.numpy())), columns=len(rows[0]), scale=2).save(args.grid)


if __name__ == "__main__":
    main()
