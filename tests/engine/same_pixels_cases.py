"""The requests whose pixels must never change, and the golden file that holds their answers.

The golden file (``golden/same_pixels.npz``) was written by the generation path as it was before it
was split into stages; any later change that moves a pixel of these images is a behaviour change.
Regenerate it only on purpose, and say why in the commit:

    python3 -m tests.engine.same_pixels_cases --write

Everything runs in float32 on one CPU thread (bf16 autocast and thread-count-dependent reductions
would make the numbers machine-dependent); the file records the CPU capability it was made on.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

GOLDEN = Path(__file__).parent / "golden" / "same_pixels.npz"
PRECISION = "float32"  # never "auto": that turns on bf16 autocast on CPUs with bf16 units
TXT2IMG_SAMPLERS = (
    "Euler",
    "Euler a",
    "DPM++ 2M",
    "DPM++ 2M Karras",
    "DPM++ 2M SDE Karras",
    "DDIM",
    "UniPC",
    "Heun",
    "DPM2",
    "LMS",
    "PNDM",
)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Models:
    sd: object  # LoadedModel: the tiny SD 1.x-style model (16 px)
    v: object  # the same architecture with v-prediction
    inpaint: object  # a 9-channel inpainting UNet
    sdxl: object  # the tiny SDXL model (32 px), two text encoders and added conditions
    inputs: Path  # folder holding the source image and the masks


def source_image(size: int) -> Image.Image:
    rng = np.random.default_rng(0)
    array = np.zeros((size, size, 3), dtype=np.uint8)
    array[:, : size // 2] = (220, 30, 40)
    array[:, size // 2 :] = (20, 200, 90)
    array += rng.integers(0, 10, size=array.shape, dtype=np.uint8)
    return Image.fromarray(array)


def square_mask(size: int) -> Image.Image:
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    return Image.fromarray(mask)


def write_inputs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for size in (16, 32):
        source_image(size).save(folder / f"source{size}.png")
        square_mask(size).save(folder / f"mask{size}.png")
    return folder


def build_models(root: Path, sd_folder: Path | None = None, v_folder: Path | None = None) -> Models:
    """The models the cases run on; ``sd_folder``/``v_folder``: the same tiny models, already built."""
    from ldm_studio.engine.loader import load_model
    from tests.engine.checkpoint_factory import tiny
    from tests.tiny_models import build_tiny_sd

    def load(folder: Path) -> object:
        with one_thread():  # the Fast-preview projection is fitted here, through the VAE
            return load_model(folder, device="cpu", dtype=PRECISION)

    return Models(
        sd=load(sd_folder or build_tiny_sd(root / "tiny-sd")),
        v=load(v_folder or build_tiny_sd(root / "tiny-sd-v", prediction_type="v_prediction")),
        inpaint=load(build_tiny_sd(root / "tiny-inpaint", inpainting=True)),
        sdxl=load(tiny("sdxl").folder),
        inputs=write_inputs(root / "inputs"),
    )


def as_array(result: object) -> np.ndarray:
    from ldm_studio.engine.events import Finished

    assert isinstance(result, Finished), result
    return np.stack([np.asarray(image.convert("RGB"), dtype=np.uint8) for image in result.images])


def make_request(prompt: str = "a red apple", **changes: object):
    from ldm_studio.engine.request import GenerationRequest

    settings = {"negative_prompt": "blurry", "seed": 1234, "steps": 5, "guidance": 6.0, "sampler": "Euler a"}
    settings.update(changes)
    return GenerationRequest(prompt, **settings)


def run(model: object, request: object, **options: object) -> object:
    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.preview import PreviewSettings

    return generate(model, request, preview=PreviewSettings("off"), **options)


def _with_last_preview(model: object, request: object) -> dict[str, np.ndarray]:
    """The image plus the last step's x0 and noisy-latent previews (they check the x0 estimate)."""
    from ldm_studio.engine.events import Step
    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.preview import PreviewMode, PreviewSettings

    steps: list[Step] = []
    result = generate(
        model,
        request,
        lambda event: steps.append(event) if isinstance(event, Step) else None,
        preview=PreviewSettings(PreviewMode.FAST, every=1),
        keep_trajectory=True,
    )
    return {"": as_array(result), "/x0": steps[-2].preview, "/noisy": steps[-2].noisy}


def branch_from(model: object, parent_request: object, from_step: int, **changes: object) -> np.ndarray:
    from ldm_studio.engine.generate import Branch

    original = run(model, parent_request, keep_trajectory=True)
    branch = Branch(original.trajectory, from_step, original.request)
    return as_array(run(model, original.request.replace(**changes), branch=branch))


def walk_frames(model: object) -> np.ndarray:
    from ldm_studio.engine.walk import WalkRequest, walk

    start = make_request("a cat", seed=5, steps=4, sampler="Euler a")
    frames = walk(model, WalkRequest(start, to_seed=77, to_prompt="a dog", frames=3))
    return np.stack([np.asarray(frame.convert("RGB"), dtype=np.uint8) for frame in frames])


Case = Callable[[Models], "np.ndarray | dict[str, np.ndarray]"]


def cases() -> dict[str, Case]:
    """Case name -> how to render it from the models (an array, or several named arrays)."""
    table: dict[str, Case] = {}
    for sampler in TXT2IMG_SAMPLERS:
        table[f"txt2img/{sampler}"] = functools.partial(
            lambda m, s: as_array(run(m.sd, make_request(sampler=s))), s=sampler
        )
    table["txt2img/batch2 Euler a"] = lambda m: as_array(run(m.sd, make_request(batch_size=2)))
    table["txt2img/batch2 DPM++ 2M"] = lambda m: as_array(
        run(m.sd, make_request(batch_size=2, sampler="DPM++ 2M"))
    )
    table["txt2img/cfg1 Euler a"] = lambda m: as_array(run(m.sd, make_request(guidance=1.0)))
    table["txt2img/cfg1 DDIM"] = lambda m: as_array(run(m.sd, make_request(guidance=1.0, sampler="DDIM")))
    table["txt2img/no negative UniPC"] = lambda m: as_array(
        run(m.sd, make_request(negative_prompt="", sampler="UniPC"))
    )
    table["preview/DPM++ 2M"] = lambda m: _with_last_preview(m.sd, make_request(sampler="DPM++ 2M"))
    table["preview/Euler a"] = lambda m: _with_last_preview(m.sd, make_request())
    table["preview/Heun"] = lambda m: _with_last_preview(m.sd, make_request(sampler="Heun"))

    def img2img(sampler: str, strength: float) -> Case:
        return lambda m: as_array(
            run(
                m.sd,
                make_request(sampler=sampler, init_image=str(m.inputs / "source16.png"), strength=strength),
            )
        )

    def inpaint(model_name: str, sampler: str, strength: float = 1.0, **extras: object) -> Case:
        def render_case(m: Models) -> np.ndarray:
            request = make_request(
                sampler=sampler,
                init_image=str(m.inputs / "source16.png"),
                mask=str(m.inputs / "mask16.png"),
                strength=strength,
                extras=dict(extras),
            )
            return as_array(run(getattr(m, model_name), request))

        return render_case

    table["img2img/Euler a 0.6"] = img2img("Euler a", 0.6)
    table["img2img/DDIM 0.5"] = img2img("DDIM", 0.5)
    table["img2img/DPM++ 2M 0.8"] = img2img("DPM++ 2M", 0.8)
    table["img2img/Heun 0.6"] = img2img("Heun", 0.6)
    table["img2img/batch2 Euler 0.7"] = lambda m: as_array(
        run(
            m.sd,
            make_request(
                sampler="Euler", batch_size=2, init_image=str(m.inputs / "source16.png"), strength=0.7
            ),
        )
    )
    table["inpaint4/Euler a"] = inpaint("sd", "Euler a")
    table["inpaint4/DPM++ 2M feather"] = inpaint("sd", "DPM++ 2M", mask_feather=2.0)
    table["inpaint4/DDIM 0.7"] = inpaint("sd", "DDIM", strength=0.7)
    table["inpaint9/Euler"] = inpaint("inpaint", "Euler")
    table["inpaint9/UniPC inverted"] = inpaint("inpaint", "UniPC", mask_invert=True)
    for sampler in ("DDIM", "Euler a", "UniPC", "DPM++ 2M"):
        table[f"vpred/{sampler}"] = functools.partial(
            lambda m, s: as_array(run(m.v, make_request(sampler=s))), s=sampler
        )
    table["branch/same Euler a"] = lambda m: branch_from(m.sd, make_request(steps=6), 3)
    table["branch/same DPM++ 2M"] = lambda m: branch_from(m.sd, make_request(steps=6, sampler="DPM++ 2M"), 2)
    table["branch/new prompt Euler"] = lambda m: branch_from(
        m.sd, make_request(steps=6, sampler="Euler"), 3, prompt="a whale"
    )
    table["branch/to DPM++ 2M 8 steps"] = lambda m: branch_from(
        m.sd, make_request(steps=6, sampler="Euler"), 3, sampler="DPM++ 2M", steps=8, guidance=3.0
    )
    table["branch/to Heun"] = lambda m: branch_from(
        m.sd, make_request(steps=6, sampler="DDIM"), 2, sampler="Heun"
    )
    table["branch/inpaint4 same"] = lambda m: branch_from(
        m.sd,
        make_request(steps=6, init_image=str(m.inputs / "source16.png"), mask=str(m.inputs / "mask16.png")),
        3,
    )
    table["walk/3 frames"] = lambda m: walk_frames(m.sd)
    # the tiny SDXL's native size is 256 px: ask for 32 px (and one non-square size for the time ids)
    xl = {"width": 32, "height": 32}
    table["sdxl/Euler a"] = lambda m: as_array(run(m.sdxl, make_request(**xl)))
    table["sdxl/DPM++ 2M batch2"] = lambda m: as_array(
        run(m.sdxl, make_request(sampler="DPM++ 2M", batch_size=2, **xl))
    )
    table["sdxl/cfg1 Euler"] = lambda m: as_array(
        run(m.sdxl, make_request(sampler="Euler", guidance=1.0, **xl))
    )
    table["sdxl/non-square DDIM"] = lambda m: as_array(
        run(m.sdxl, make_request(sampler="DDIM", width=32, height=48))
    )
    table["sdxl/img2img Euler a"] = lambda m: as_array(
        run(m.sdxl, make_request(init_image=str(m.inputs / "source32.png"), strength=0.6, **xl))
    )
    table["sdxl/inpaint4 DPM++ 2M"] = lambda m: as_array(
        run(
            m.sdxl,
            make_request(
                sampler="DPM++ 2M",
                init_image=str(m.inputs / "source32.png"),
                mask=str(m.inputs / "mask32.png"),
                **xl,
            ),
        )
    )
    return table


def render(models: Models, only: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every case's arrays, keyed by case name (``name/x0``-style keys for the extra arrays)."""
    out: dict[str, np.ndarray] = {}
    with one_thread():
        for name, case in cases().items():
            if only is not None and name not in only:
                continue
            value = case(models)
            if isinstance(value, dict):
                out.update({name + suffix: array for suffix, array in value.items()})
            else:
                out[name] = value
    return out


def write_golden(path: Path = GOLDEN) -> Path:
    with tempfile.TemporaryDirectory(prefix="ldm-golden-") as scratch:
        arrays = render(build_models(Path(scratch)))
    path.parent.mkdir(parents=True, exist_ok=True)
    capability = np.array(torch.backends.cpu.get_cpu_capability())
    np.savez_compressed(path, __cpu_capability__=capability, **arrays)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the golden file")
    if parser.parse_args().write:
        path = write_golden()
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    else:
        parser.print_help()


if __name__ == "__main__":
    main()
