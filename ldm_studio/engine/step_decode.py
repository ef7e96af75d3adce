"""One kept step of a trajectory shown as it really looks: its x0 through the model's VAE.

The timeline calls this for the step the user stops on (the live preview may have been the Fast
projection); ``engine.animation.timeline_frames`` does the same for every step of an export.
"""

from __future__ import annotations

import numpy as np
import torch

from ldm_studio.engine.errors import GenerationError
from ldm_studio.engine.generation.decode import decode
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.preview import tile, to_uint8
from ldm_studio.engine.trajectory import Trajectory


@torch.no_grad()
def decode_kept_step(model: LoadedModel, trajectory: Trajectory, step: int) -> np.ndarray:
    """Real step ``step`` (1-based) of ``trajectory``: H x W x 3 uint8 (a grid for batches)."""
    try:
        kept = trajectory.step(step)
    except IndexError as error:
        raise GenerationError(f"Step {step} is not in the last generation.") from error
    if kept.x0 is None:
        raise GenerationError(
            f"Step {step} was past the timeline's memory bound, so only its preview was kept."
        )
    vae_dtype = next(model.pipe.vae.parameters()).dtype
    return tile(to_uint8(decode(model, kept.x0.to(model.placement.device, vae_dtype))))
