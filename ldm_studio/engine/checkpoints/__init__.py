"""Single-file checkpoints and model folders: recognise them, load them offline, convert pickles.

Used by ``engine.loader`` (loading), ``engine.library`` (the model list) and ``ldm-studio info``.
"""

from ldm_studio.engine.checkpoints.info import FAMILY_LABELS, ModelInfo
from ldm_studio.engine.checkpoints.inspect import inspect_model
from ldm_studio.engine.checkpoints.settings import get_model_settings, set_model_settings
from ldm_studio.engine.checkpoints.single_file import convert_ckpt_to_safetensors, load_single_file, load_vae

__all__ = [
    "FAMILY_LABELS",
    "ModelInfo",
    "convert_ckpt_to_safetensors",
    "get_model_settings",
    "inspect_model",
    "load_single_file",
    "load_vae",
    "set_model_settings",
]
