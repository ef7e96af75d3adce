"""Writing a trained LoRA as kohya sd-scripts writes one: tensors plus ``ss_*`` metadata strings.

Hashes, as kohya defines them:
- ``ss_sd_model_hash``: the base's legacy hash (SHA-256 of 64 KiB at offset 1 MiB, 8 hex digits);
  ``ss_new_sd_model_hash``: the base's full SHA-256 (a diffusers folder: LDM Studio's manifest hash,
  the SHA-256 over its files' hashes, as the model library shows it).
- ``sshs_model_hash`` / ``sshs_legacy_hash``: the LoRA's *own* hashes (SHA-256 of the tensor bytes
  after the safetensors header, and the legacy slice hash), precomputed so A1111 need not hash it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

# ss_base_model_version values kohya writes per family (v-prediction SD 2.x adds "_v")
BASE_MODEL_VERSIONS = {"sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0", "ldm-studio": "ldm_studio"}
MODELSPEC_ARCHITECTURES = {
    "sd1": "stable-diffusion-v1/lora",
    "sd2": "stable-diffusion-v2-512/lora",
    "sdxl": "stable-diffusion-xl-v1-base/lora",
    "ldm-studio": "ldm-studio/lora",
}


def legacy_hash(stream: io.BufferedIOBase) -> str:
    digest = hashlib.sha256()
    stream.seek(0x100000)
    digest.update(stream.read(0x10000))
    return digest.hexdigest()[:8]


def tensor_data_hash(stream: io.BufferedIOBase) -> str:
    """SHA-256 of a safetensors file after its header: unchanged by metadata edits."""
    stream.seek(0)
    header_length = int.from_bytes(stream.read(8), "little")
    stream.seek(8 + header_length)
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def base_model_hashes(path: Path) -> dict[str, str]:
    from ldm_studio.engine.library import LibraryCache, default_cache_path, folder_sha256

    cache = LibraryCache(default_cache_path())
    if path.is_dir():
        full = folder_sha256(path, cache)
        hashes = {"ss_sd_model_hash": full[:8], "ss_new_sd_model_hash": full}
    else:
        with path.open("rb") as stream:
            hashes = {"ss_sd_model_hash": legacy_hash(stream), "ss_new_sd_model_hash": cache.sha256(path)}
    cache.save()
    return hashes


def kohya_metadata(
    *,
    family: str,
    prediction_type: str,
    base_path: Path,
    output_name: str,
    rank: int,
    alpha: float,
    resolution: tuple[int, int],
    dataset_name: str,
    tag_frequency: dict[str, int],
    num_images: int,
    steps: int,
    learning_rate: float,
    text_encoder_trained: bool,
    trigger: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, str]:
    """kohya's metadata keys (values as strings, JSON where kohya writes JSON)."""
    version = BASE_MODEL_VERSIONS.get(family, family)
    if family == "sd2" and prediction_type == "v_prediction":
        version += "_v"
    metadata: dict[str, Any] = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": rank,
        "ss_network_alpha": alpha,
        "ss_base_model_version": version,
        "ss_v_parameterization": prediction_type == "v_prediction",
        "ss_sd_model_name": base_path.name,
        "ss_resolution": f"({resolution[0]}, {resolution[1]})",
        "ss_tag_frequency": json.dumps({dataset_name: tag_frequency}, ensure_ascii=False),
        "ss_output_name": output_name,
        "ss_num_train_images": num_images,
        "ss_steps": steps,
        "ss_max_train_steps": steps,
        "ss_learning_rate": learning_rate,
        "ss_network_train_unet_only": not text_encoder_trained,
        "ss_training_finished_at": time.time(),
        "ss_training_comment": "trained with LDM Studio",
        **base_model_hashes(base_path),
        **(extra or {}),
    }
    if family in ("sd1", "sd2"):  # only SD: a reader takes ss_v2 "False" to mean SD 1.x
        metadata["ss_v2"] = family == "sd2"
    if trigger:
        metadata["ss_trigger_word"] = trigger
        metadata["modelspec.trigger_phrase"] = trigger
    metadata["modelspec.sai_model_spec"] = "1.0.0"
    metadata["modelspec.architecture"] = MODELSPEC_ARCHITECTURES.get(family, f"{family}/lora")
    metadata["modelspec.implementation"] = "https://github.com/kohya-ss/sd-scripts"
    metadata["modelspec.title"] = output_name
    return {key: str(value) for key, value in metadata.items()}


def save_kohya_lora(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """Write atomically, with ``sshs_*`` computed the way kohya does (over the ``ss_*`` keys only)."""
    from safetensors.torch import save, save_file

    hashed = io.BytesIO(save(tensors, {k: v for k, v in metadata.items() if k.startswith("ss_")}))
    metadata = {
        **metadata,
        "sshs_model_hash": tensor_data_hash(hashed),
        "sshs_legacy_hash": legacy_hash(hashed),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    save_file(tensors, str(partial), metadata)
    os.replace(partial, path)
    return path
