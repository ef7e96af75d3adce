"""SD 3.x and FLUX.1: what makes them a family of their own (transformer denoisers, flow matching).

Detection from a diffusers folder's configs (family, and the variant people name: FLUX dev or
schnell, SD 3 or 3.5), the samplers that make sense for flow matching (the names users know, the
rest greyed out with a reason), and ``FlowScheduler``: diffusers' flow-matching schedulers behind
the interface the one sampling loop already uses (``scale_model_input``, ``init_noise_sigma``,
``add_noise``, a ``step`` that returns x0), so the loop never learns that a model is a flow model.

No torch at import time: the model panel lists samplers from here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FLOW_FAMILIES = ("sd3", "flux")
# The names users know, onto diffusers' flow-matching schedulers. DPM++ 2M and UniPC are diffusers'
# multistep solvers in their flow form (use_flow_sigmas, flow_prediction, the model's shift).
FLOW_SAMPLERS = {
    "Euler": "FlowMatchEulerDiscreteScheduler",
    "Heun": "FlowMatchHeunDiscreteScheduler",
    "DPM++ 2M": "DPMSolverMultistepScheduler",
    "UniPC": "UniPCMultistepScheduler",
}
MULTISTEP_FLOW_SAMPLERS = ("DPM++ 2M", "UniPC")  # shift given as flow_shift, not FlowMatch's config
DEFAULT_FLOW_SAMPLER = "Euler"
NOT_FLOW_REASON = (
    "a noise-prediction sampler: SD 3 and FLUX are flow-matching models (use Euler, Heun, DPM++ 2M or UniPC)"
)


@dataclass(frozen=True)
class FlowVariant:
    family: str  # "sd3" / "flux" (engine.catalog.FAMILIES)
    variant: str  # "SD 3", "SD 3.5 Large", "SD 3.5 Medium", "FLUX.1 dev", "FLUX.1 schnell"
    guidance_embedded: bool  # FLUX dev: the guidance value is an input, not a second pass
    uses_cfg: bool  # SD 3: classic classifier-free guidance (two passes)


def is_flow_family(family: str) -> bool:
    return family in FLOW_FAMILIES


def variant_from_configs(pipeline_class: str, transformer: dict[str, Any]) -> FlowVariant | None:
    """The family and variant from model_index's class name and the transformer's config, or None."""
    if "Flux" in pipeline_class or "guidance_embeds" in transformer:
        dev = bool(transformer.get("guidance_embeds", False))
        return FlowVariant("flux", "FLUX.1 dev" if dev else "FLUX.1 schnell", dev, False)
    if "StableDiffusion3" in pipeline_class or "pos_embed_max_size" in transformer:
        # SD 3.5 Medium has MMDiT-X's dual attention layers; SD 3.5 Large RMS-normed q/k; SD 3 neither
        if transformer.get("dual_attention_layers"):
            variant = "SD 3.5 Medium"
        elif transformer.get("qk_norm"):
            variant = "SD 3.5 Large"
        else:
            variant = "SD 3"
        return FlowVariant("sd3", variant, False, True)
    return None


def folder_variant(folder: Path) -> FlowVariant | None:
    """A diffusers folder's flow family, read from model_index.json and transformer/config.json."""
    try:
        index = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(index, dict) or "transformer" not in index:
        return None
    try:
        transformer = json.loads((Path(folder) / "transformer" / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        transformer = {}
    return variant_from_configs(str(index.get("_class_name", "")), transformer)


def pipe_variant(pipe: Any) -> FlowVariant | None:
    transformer = getattr(pipe, "transformer", None)
    if transformer is None:
        return None
    return variant_from_configs(type(pipe).__name__, dict(transformer.config))


def native_size(pipe: Any) -> int:
    """The image side the pipeline itself picks when none is given (FLUX: 128 latents · 8 = 1024)."""
    return int(pipe.default_sample_size) * int(pipe.vae_scale_factor)


def samplers_for(family: str, names: list[str]) -> dict[str, str]:
    """For each of ``names`` (the sampler list the panel shows): "" where it works with ``family``,
    else the reason it is greyed out."""
    if not is_flow_family(family):
        return {name: "" for name in names}
    reasons = {}
    for name in names:
        reasons[name] = "" if name in FLOW_SAMPLERS else NOT_FLOW_REASON
    return reasons


def check_flow_size(width: int, height: int, multiple: int, label: str) -> None:
    """Raise ValueError with a sentence when a side is not a multiple of the latent patch size."""
    for name, side in (("width", width), ("height", height)):
        if side % multiple:
            lower, upper = side - side % multiple, side - side % multiple + multiple
            raise ValueError(
                f"{label} needs width and height in multiples of {multiple}; the {name} {side} is not "
                f"(use {lower or upper} or {upper})"
            )


def calculate_shift(image_seq_len: int, config: Any) -> float:
    """FLUX's resolution-dependent shift mu: a line from (base_seq_len, base_shift) to
    (max_seq_len, max_shift), as diffusers' ``calculate_shift`` (FluxPipeline's defaults)."""
    base_len = config.get("base_image_seq_len", 256)
    max_len = config.get("max_image_seq_len", 4096)
    base_shift = config.get("base_shift", 0.5)
    max_shift = config.get("max_shift", 1.15)
    slope = (max_shift - base_shift) / (max_len - base_len)
    return image_seq_len * slope + (base_shift - slope * base_len)


@dataclass
class FlowStepOutput:
    prev_sample: Any
    pred_original_sample: Any


class FlowScheduler:
    """A diffusers flow-matching scheduler with the SD-style surface the sampling loop calls.

    Latents are x_t = (1 - sigma) x0 + sigma * noise and the network predicts v = noise - x0, so
    x0 = x_t - sigma * v with sigma = t / num_train_timesteps (diffusers' flow timesteps are
    sigma · 1000). ``prepare`` sets the timesteps the way the family's bare pipeline does.
    """

    def __init__(self, sampler: str, base_config: dict[str, Any]) -> None:
        if sampler not in FLOW_SAMPLERS:
            raise ValueError(
                f"the {sampler} sampler does not work with flow-matching models (SD 3, FLUX); "
                f"choose one of {', '.join(FLOW_SAMPLERS)}"
            )
        self.sampler = sampler
        self.base_config = {k: v for k, v in base_config.items() if k != "_use_default_values"}
        self.inner = self._build(self.base_config)
        self.init_noise_sigma = 1.0
        self.mu: float | None = None
        self.pipeline_sigmas = False  # FluxPipeline's linspace(1, 1/n, n) instead of the scheduler's own

    def _build(self, config: dict[str, Any]) -> Any:
        import diffusers

        scheduler_class = getattr(diffusers, FLOW_SAMPLERS[self.sampler])
        if self.sampler in MULTISTEP_FLOW_SAMPLERS:
            return scheduler_class(**_multistep_config(config))
        return scheduler_class.from_config(config)

    def __getattr__(self, name: str) -> Any:  # timesteps, sigmas, order, config, step_index, ...
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __deepcopy__(self, memo: dict) -> FlowScheduler:
        import copy

        clone = object.__new__(FlowScheduler)
        clone.__dict__.update({k: copy.deepcopy(v, memo) for k, v in self.__dict__.items()})
        return clone

    @property
    def dynamic_shift(self) -> bool:
        return bool(self.base_config.get("use_dynamic_shifting", False))

    def prepare(self, image_seq_len: int, pipeline_sigmas: bool = False) -> None:
        """Before ``set_timesteps``: FLUX's mu for this many image tokens (and its own sigma list)."""
        self.pipeline_sigmas = pipeline_sigmas
        self.mu = calculate_shift(image_seq_len, self.base_config) if self.dynamic_shift else None
        if self.mu is not None and self.sampler != "Euler":
            # only Euler's flow scheduler takes mu; exp(mu) as a fixed shift is the same curve
            # (exp(mu) / (exp(mu) + 1/t - 1) = s t / (1 + (s - 1) t) with s = exp(mu))
            self.inner = self._build(
                {**self.base_config, "use_dynamic_shifting": False, "shift": math.exp(self.mu)}
            )

    def set_timesteps(self, steps: int, device: Any = None) -> None:
        if self.pipeline_sigmas and self.sampler == "Euler":
            import numpy as np

            # FluxPipeline's own sigmas: linspace(1, 1/n, n), shifted by mu
            sigmas = np.linspace(1.0, 1 / steps, steps)
            self.inner.set_timesteps(sigmas=sigmas, device=device, mu=self.mu)
        else:
            self.inner.set_timesteps(steps, device=device)

    def scale_model_input(self, sample: Any, timestep: Any) -> Any:
        return sample

    def add_noise(self, original: Any, noise: Any, timesteps: Any) -> Any:
        if hasattr(self.inner, "scale_noise"):  # FlowMatch schedulers
            return self.inner.scale_noise(original, timesteps, noise)
        return self.inner.add_noise(original, noise, timesteps)  # flow sigmas: (1 - s) x0 + s noise

    def sigma_at(self, timestep: Any) -> float:
        """The sigma of ``timestep``: t / 1000 for FlowMatch schedulers; the multistep solvers round
        their timesteps to integers, so theirs is read from their own sigma list."""
        if self.sampler in MULTISTEP_FLOW_SAMPLERS:
            where = (self.inner.timesteps == timestep).nonzero()
            if len(where):
                return float(self.inner.sigmas[int(where[0])])
        return float(timestep) / float(self.inner.config.num_train_timesteps)

    def step(self, model_output: Any, timestep: Any, sample: Any, **options: Any) -> FlowStepOutput:
        options.pop("return_dict", None)
        if self.sampler in ("Heun", "UniPC"):  # deterministic steps that take no generator
            options.pop("generator", None)
        x0 = sample - self.sigma_at(timestep) * model_output.to(sample.dtype)
        prev = self.inner.step(model_output, timestep, sample, return_dict=False, **options)[0]
        return FlowStepOutput(prev, x0)


def _multistep_config(config: dict[str, Any]) -> dict[str, Any]:
    """DPM-Solver++ / UniPC in their flow form with the model's fixed shift (dynamic shifting is
    given as a fixed exp(mu) by ``prepare``, as for Heun)."""
    return {
        "num_train_timesteps": int(config.get("num_train_timesteps", 1000)),
        "use_flow_sigmas": True,
        "prediction_type": "flow_prediction",
        "flow_shift": float(config.get("shift", 1.0) or 1.0),
        "solver_order": 2,
    }


def flow_scheduler(sampler: str, base_config: dict[str, Any], schedule: str = "Automatic") -> FlowScheduler:
    """The flow form of sampler ``sampler``; ValueError with a sentence for a sampler or schedule type
    that has none."""
    if schedule != "Automatic":
        raise ValueError(
            f"the {schedule} schedule type is for noise-prediction models; SD 3 and FLUX use their "
            "own shifted flow schedule (choose Automatic)"
        )
    return FlowScheduler(sampler, dict(base_config))


def prepare_flow_schedule(scheduler: FlowScheduler, model: Any, request: Any) -> None:
    """Check the size (latents in 2x2 patches) and give FLUX dev its mu for this many image tokens."""
    from ldm_studio.engine.errors import GenerationError

    factor = int(model.vae_scale_factor) * 2
    label = "FLUX.1" if model.family == "flux" else "Stable Diffusion 3"
    try:
        check_flow_size(int(request.width), int(request.height), factor, label)
    except ValueError as error:
        raise GenerationError(str(error)[:1].upper() + str(error)[1:] + ".") from None
    tokens = (request.height // factor) * (request.width // factor)
    scheduler.prepare(tokens, pipeline_sigmas=model.family == "flux")


def _read_config(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


DISTILLED_CFG_KEY = "Distilled CFG Scale"  # Forge's key for FLUX dev's guidance input
SHIFT_KEY = "Shift"


def flow_record(model: Any, guidance: float) -> dict[str, Any]:
    """What a flow model adds to an image's record, under the keys Forge writes in ``parameters``:
    FLUX dev's guidance input, and the schedule's fixed shift where it has one (FLUX dev's shift
    follows the image size instead)."""
    variant = pipe_variant(model.pipe) if is_flow_family(model.family) else None
    if variant is None:
        return {}
    record: dict[str, Any] = {}
    if variant.guidance_embedded:
        record[DISTILLED_CFG_KEY] = float(guidance)
    config = model.base_scheduler_config
    shift = float(config.get("shift", 1.0) or 1.0)
    if not config.get("use_dynamic_shifting") and shift != 1.0:
        record[SHIFT_KEY] = shift
    return record


BYTES_PER_PARAMETER = {
    "float32": 4.0,
    "bfloat16": 2.0,
    "float16": 2.0,
    "fp8": 1.0,
    "Q8_0": 1.0625,
    "Q4_0": 0.5625,
}
# activations, the latents and the decode on top of the weights (an estimate, not a measurement)
WORKING_MARGIN = 1.2


def memory_needed(
    parameters: dict[str, int], precision: str, stored_bytes: dict[str, int] | None = None
) -> int:
    """Bytes to hold all parts of a model in ``precision`` while it generates (estimate).
    ``stored_bytes``: parts held as stored whatever the precision (a GGUF transformer stays
    quantised), counted at their real size instead."""
    per_parameter = BYTES_PER_PARAMETER[precision]
    kept = stored_bytes or {}
    weights = sum(count * per_parameter for name, count in parameters.items() if name not in kept)
    return int((weights + sum(kept.values())) * WORKING_MARGIN)


def memory_sentence(
    parameters: dict[str, int],
    precision: str,
    available: int,
    stored_bytes: dict[str, int] | None = None,
    device: str = "cpu",
    family: str = "flux",
) -> str:
    """ "" when it fits in ``available`` bytes, else the sentence that says so and the ways that fit:
    a half precision, an fp8 file, a GGUF transformer (FLUX), CPU offload (CUDA)."""
    needed = memory_needed(parameters, precision, stored_bytes)
    if needed <= available:
        return ""
    kept = dict(stored_bytes or {})
    options = []
    if BYTES_PER_PARAMETER[precision] > 2 and memory_needed(parameters, "bfloat16", kept) <= available:
        options.append(("Precision bfloat16", memory_needed(parameters, "bfloat16", kept)))
    transformer = parameters.get("transformer", 0)
    if transformer and "transformer" not in kept:
        options.append(("an fp8 file of it", memory_needed(parameters, "fp8", kept)))
        for kind in ("Q8_0", "Q4_0") if family == "flux" else ():
            quantised = {**kept, "transformer": int(transformer * BYTES_PER_PARAMETER[kind])}
            options.append((f"a GGUF {kind} transformer", memory_needed(parameters, "bfloat16", quantised)))
    fitting = [f"{name} ({gigabytes / 1e9:.1f} GB)" for name, gigabytes in options if gigabytes <= available]
    if device == "cuda":
        fitting.append("CPU offload in the model's settings (the weights wait in RAM)")
    ways = f"what fits: {', '.join(fitting)}" if fitting else "nothing smaller of it fits: a smaller model"
    return (
        f"This model needs about {needed / 1e9:.1f} GB in {precision} and this machine has "
        f'{available / 1e9:.1f} GB free; {ways}. To try anyway, tick "Load even if memory looks short" '
        "in its settings (ldm-studio generate --skip-memory-check)."
    )
