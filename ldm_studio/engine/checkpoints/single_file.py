"""Loading single-file checkpoints into diffusers pipelines, offline, and converting pickles.

diffusers' ``from_single_file`` does the key conversion; we give it a local config folder fitted
to the checkpoint (so it never asks the hub), allow exactly the numpy globals a pickle needs, and
turn its failures into one sentence with the real cause.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ldm_studio.engine.checkpoints.configs import PIPELINE_CLASSES, vae_config, write_config_folder
from ldm_studio.engine.checkpoints.coverage import verify_coverage
from ldm_studio.engine.checkpoints.info import ModelInfo
from ldm_studio.engine.checkpoints.inspect import NO_VAE_REASON, describe_tensors, read_tensor_table
from ldm_studio.engine.checkpoints.pickles import explain_load_error, load_state_dict, safe_unpickling
from ldm_studio.engine.checkpoints.settings import PREDICTION_TYPES
from ldm_studio.engine.errors import ModelLoadError


def load_single_file(
    path: Path | str,
    *,
    torch_dtype: Any = None,
    prediction_type: str | None = None,
    vae_path: Path | str | None = None,
) -> Any:
    """A StableDiffusionPipeline or StableDiffusionXLPipeline from one checkpoint file, offline.

    ``prediction_type`` overrides the guess from ``inspect_model`` (which already honours the
    user's saved choice); ``vae_path`` replaces the checkpoint's VAE with a VAE file or folder.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise ModelLoadError(
            f"{path.name} is a diffusers folder; load it with from_pretrained, not as a file"
        )
    if not path.is_file():
        raise ModelLoadError(f"{path} does not exist")
    table, file_type = read_tensor_table(path)
    info = describe_tensors(path, table, file_type)
    missing_only_vae = info.needs_vae and info.reason == NO_VAE_REASON and vae_path is not None
    if not info.loadable and not missing_only_vae:
        raise ModelLoadError(f"{path.name} cannot be loaded: {info.reason}")
    prediction = prediction_type or info.prediction_type
    if prediction not in PREDICTION_TYPES:
        raise ModelLoadError(
            f"unknown prediction type {prediction!r}; use one of {', '.join(PREDICTION_TYPES)}"
        )
    import diffusers

    pipeline_class = getattr(diffusers, PIPELINE_CLASSES[info.family])
    with tempfile.TemporaryDirectory(prefix="ldm-studio-config-") as temporary:
        config_folder = write_config_folder(info, Path(temporary) / "config", prediction_type=prediction)
        components: dict[str, Any] = {}
        if vae_path is not None:
            components["vae"] = load_vae(Path(vae_path).expanduser(), config_folder, info, torch_dtype)
        verify_coverage(
            table, config_folder, path.name, ("unet",) if vae_path is not None else ("unet", "vae")
        )
        try:
            with _unpickling_guard(path, info):
                pipe = pipeline_class.from_single_file(
                    str(path),
                    config=str(config_folder),
                    local_files_only=True,
                    torch_dtype=_diffusers_dtype(torch_dtype),
                    **components,
                )
        except ModelLoadError:
            raise
        except Exception as error:  # diffusers, transformers and torch raise many kinds
            raise _explain(path, error) from error
    _check_complete(pipe, path)
    return pipe


def load_vae(vae_path: Path, config_folder: Path, model: ModelInfo, torch_dtype: Any = None) -> Any:
    """A separate VAE (a file, or a diffusers folder) to use with ``model``."""
    from diffusers import AutoencoderKL

    if vae_path.is_dir():
        subfolder = "vae" if (vae_path / "vae" / "config.json").is_file() else None
        try:
            vae = AutoencoderKL.from_pretrained(
                vae_path, subfolder=subfolder, local_files_only=True, torch_dtype=torch_dtype
            )
        except Exception as error:
            raise ModelLoadError(
                f"the VAE folder {vae_path.name} could not be loaded: {_root_cause(error)}"
            ) from error
    else:
        table, file_type = read_tensor_table(vae_path)
        info = describe_tensors(vae_path, table, file_type)
        if info.vae is None:
            raise ModelLoadError(f"{vae_path.name} is not a VAE ({info.family_label})")
        config_file = config_folder / "vae" / "config.json"
        config = vae_config(json.loads(config_file.read_text(encoding="utf-8")), info.vae)
        config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")
        if not any(name.startswith("encoder.down_blocks.") for name in table.shapes):
            verify_coverage(table, config_folder, vae_path.name, ("vae",))  # original layout only
        try:
            with _unpickling_guard(vae_path, info):
                vae = AutoencoderKL.from_single_file(
                    str(vae_path),
                    config=str(config_folder),
                    subfolder="vae",
                    local_files_only=True,
                    torch_dtype=_diffusers_dtype(torch_dtype),
                )
        except ModelLoadError:
            raise
        except Exception as error:
            raise _explain(vae_path, error) from error
        _check_complete_module(vae, vae_path, "vae")
    if model.unet is not None and vae.config.latent_channels != model.unet.in_channels:
        raise ModelLoadError(
            f"the VAE {vae_path.name} makes {vae.config.latent_channels}-channel latents but the model "
            f"needs {model.unet.in_channels}"
        )
    return vae


def _diffusers_dtype(torch_dtype: Any) -> Any:
    """Models are built in float32: asking for float32 only adds a final cast, which fails on a
    weight the file lacks before _check_complete can name it."""
    import torch

    return None if torch_dtype in (None, torch.float32) else torch_dtype


@contextlib.contextmanager
def _unpickling_guard(path: Path, info: ModelInfo) -> Iterator[None]:
    if info.file_type == "ckpt":
        with safe_unpickling(path):
            yield
    else:
        yield


def _explain(path: Path, error: BaseException) -> ModelLoadError:
    cause: BaseException | None = error
    while cause is not None:
        if "Weights only load failed" in str(cause) or type(cause).__name__ == "UnpicklingError":
            return explain_load_error(path, cause)
        if type(cause).__name__ == "OutOfMemoryError" or isinstance(cause, MemoryError):
            return ModelLoadError(f"not enough memory to load {path.name}")
        if "meta tensor" in str(cause):
            return ModelLoadError(
                f"{path.name} lacks weights its architecture needs (incomplete or non-standard file)"
            )
        cause = cause.__cause__ or cause.__context__
    return ModelLoadError(f"{path.name} could not be loaded: {_root_cause(error)}")


def _root_cause(error: BaseException) -> str:
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]


def _check_complete(pipe: Any, path: Path) -> None:
    """diffusers builds models on the meta device and fills in what the file has; a weight the file
    lacks stays on meta and would only fail later, deep inside generation."""
    for name, component in pipe.components.items():
        _check_complete_module(component, path, name)


def _check_complete_module(module: Any, path: Path, name: str) -> None:
    import torch

    if not isinstance(module, torch.nn.Module):
        return
    missing = [key for key, value in module.state_dict().items() if value.device.type == "meta"]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ModelLoadError(f"{path.name} lacks weights for its {name}: {shown}")


def convert_ckpt_to_safetensors(source: Path | str, destination: Path | str | None = None) -> Path:
    """Write the tensors of a (safely loadable) pickled checkpoint as .safetensors; returns the new path.

    Non-tensor entries (``global_step``...) are dropped. Refuses to overwrite an existing file.
    """
    from safetensors.torch import save_file

    source = Path(source).expanduser()
    target = Path(destination).expanduser() if destination else source.with_suffix(".safetensors")
    if target.exists():
        raise ModelLoadError(f"{target.name} already exists; choose another name")
    tensors = load_state_dict(source, mmap=True)
    if not tensors:
        raise ModelLoadError(f"{source.name} holds no tensors to convert")
    seen_storage: set[int] = set()
    prepared = {}
    for name, tensor in tensors.items():
        storage = tensor.untyped_storage().data_ptr()
        # safetensors refuses tensors that share memory (tied weights, views): give each its own copy
        if storage in seen_storage or not tensor.is_contiguous():
            tensor = tensor.contiguous().clone()
        seen_storage.add(storage)
        prepared[name] = tensor
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(prepared, temporary, metadata={"format": "pt", "converted_from": source.name})
        os.replace(temporary, target)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise ModelLoadError(f"could not write {target.name}: {error.strerror or error}") from error
        raise
    return target
