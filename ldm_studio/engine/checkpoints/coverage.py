"""Before loading: does the file hold every UNet and VAE weight, in the shapes the config expects?

diffusers builds models on the meta device and moves them to the CPU right after filling in the
file's weights, so a weight the file lacks surfaces as "Cannot copy out of meta tensor". Running
diffusers' own key conversion over shape-only meta tensors (nothing read from disk) names the
missing or mismatched weights instead, in about a second even for SDXL.
"""

from __future__ import annotations

import json
from pathlib import Path

from ldm_studio.engine.checkpoints.tensors import TensorTable
from ldm_studio.engine.errors import ModelLoadError


def verify_coverage(
    table: TensorTable, config_folder: Path, file_name: str, components: tuple[str, ...]
) -> None:
    """Raise ModelLoadError naming the first missing or mis-shaped weights of each component."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint

    shapes_only = {name: torch.empty(shape, device="meta") for name, shape in table.shapes.items()}
    converters = {
        "unet": (UNet2DConditionModel, convert_ldm_unet_checkpoint),
        "vae": (AutoencoderKL, convert_ldm_vae_checkpoint),
    }
    for component in components:
        model_class, convert = converters[component]
        config = json.loads((config_folder / component / "config.json").read_text(encoding="utf-8"))
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            expected = model_class.from_config(config).state_dict()
        try:
            converted = convert(checkpoint=shapes_only, config=config)
        except (KeyError, IndexError, RuntimeError, ValueError) as error:
            raise ModelLoadError(
                f"{file_name}: its {component} weights cannot be mapped ({error!r})"
            ) from error
        missing = [key for key in expected if key not in converted]
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise ModelLoadError(f"{file_name} lacks weights for its {component}: {shown}")
        for key, tensor in expected.items():
            if tuple(converted[key].shape) != tuple(tensor.shape):
                raise ModelLoadError(
                    f"{file_name}: the {component} weight {key} has shape {tuple(converted[key].shape)} "
                    f"where the architecture read from the file expects {tuple(tensor.shape)}"
                )
