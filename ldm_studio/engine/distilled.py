"""Few-step (distilled) models and LoRAs: recognising them, and the settings their authors publish.

LCM, SD/SDXL-Turbo, SDXL-Lightning, Hyper-SD and TCD models make a good image in 1-8 steps without
CFG, but only with their own sampler, steps and guidance; with a 20-step CFG 7 preset they give
mush. A file says what it is in its safetensors header (Stability's ``modelspec.*`` keys, kohya's
``ss_*`` training keys), in its name (``sdxl_lightning_4step_lora``, ``lcm-lora-sdv1-5``), or the
user says it in the model's settings. No torch here: the window reads this before a model loads.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldm_studio.engine.request import GenerationRequest

# The user's choice in the model settings ("few_step": one of KINDS, or "none" for an ordinary model).
SETTING_KEY = "few_step"
NOT_DISTILLED = "none"
KIND_LABELS = {
    "lcm": "LCM",
    "turbo": "Turbo",
    "lightning": "Lightning",
    "hyper": "Hyper-SD",
    "tcd": "TCD",
}
# The header keys that name the file itself. Not ss_sd_model_name: that is the base a LoRA was
# trained on, and a LoRA trained on an LCM model is not an LCM LoRA.
NAME_KEYS = ("modelspec.title", "modelspec.architecture", "ss_output_name")

_STEPS = re.compile(r"(?<![0-9])([1-9][0-9]?)[-_ ]?steps?(?![a-z])")
# Matched on lower-cased text; the word edges keep "hyperrealism" and "tcdx" out.
_PATTERNS = (
    ("lcm", re.compile(r"(?<![a-z])lcm(?![a-z])")),
    ("tcd", re.compile(r"(?<![a-z])tcd(?![a-z])")),
    ("hyper", re.compile(r"(?<![a-z])hyper[-_ ]?sd")),
    ("lightning", re.compile(r"lightning")),
    ("turbo", re.compile(r"turbo")),
)


@dataclass(frozen=True)
class FewStepPreset:
    """A distilled model's settings: what the prompt panel adopts, or offers for a LoRA."""

    kind: str  # a key of KIND_LABELS
    sampler: str
    schedule: str
    steps: int
    guidance: float  # 1: no CFG (one network pass per step)
    size: int | None = None  # a square size the model was distilled at; None keeps the model's
    tcd_gamma: float | None = None
    source: str = "name"  # how it was recognised: "metadata", "name", "settings"

    @property
    def label(self) -> str:
        return KIND_LABELS[self.kind]

    def summary(self) -> str:
        """``LCM, 4 steps, CFG 1.5`` (the schedule and size only where they are not the default)."""
        parts = [self.sampler if self.schedule == "Automatic" else f"{self.sampler} {self.schedule}"]
        parts.append(f"{self.steps} step" + ("s" if self.steps != 1 else ""))
        parts.append("CFG off" if self.guidance <= 1.0 else f"CFG {self.guidance:g}")
        if self.tcd_gamma is not None:
            parts.append(f"gamma {self.tcd_gamma:g}")
        if self.size is not None:
            parts.append(f"{self.size}×{self.size}")
        return ", ".join(parts)

    def offer(self, what: str = "LoRA") -> str:
        """The question the panel asks: ``LCM LoRA: use LCM, 4 steps, CFG 1.5?``."""
        return f"{self.label} {what}: use {self.summary()}?"

    def applied(self, request: GenerationRequest) -> GenerationRequest:
        """``request`` with this preset's sampler, schedule, steps, guidance (and size, gamma)."""
        extras = {key: value for key, value in request.extras.items() if key != "tcd_gamma"}
        if self.tcd_gamma is not None:
            extras["tcd_gamma"] = self.tcd_gamma
        changes: dict[str, Any] = {
            "sampler": self.sampler,
            "schedule": self.schedule,
            "steps": self.steps,
            "guidance": self.guidance,
            "extras": extras,
        }
        if self.size is not None:
            changes.update(width=self.size, height=self.size)
        return request.replace(**changes)

    def matches(self, request: GenerationRequest) -> bool:
        """Whether ``request`` already runs with these settings (then nothing needs offering)."""
        return self.applied(request) == request


def preset_for(kind: str, steps: int | None = None, *, cfg_preserved: bool = False) -> FewStepPreset:
    """The authors' published settings for ``kind``; ``steps`` from the file name where it has them.

    LCM (and LCM-LoRA): LCM sampler, 4-8 steps, CFG 1-2. SD-/SDXL-Turbo: Euler a, 1-4 steps, no CFG,
    512². SDXL-Lightning: Euler with trailing timesteps (SGM Uniform), the steps it was distilled
    for, no CFG. Hyper-SD: DDIM trailing, its N steps, no CFG (its "CFG" LoRAs keep guidance 5-8);
    the 1-step Hyper-SD LoRA wants TCD with gamma 1. TCD: TCD with gamma 0.3, 4-8 steps, no CFG.
    """
    if kind == "lcm":
        return FewStepPreset("lcm", "LCM", "Automatic", steps or 4, 1.5)
    if kind == "turbo":
        return FewStepPreset("turbo", "Euler a", "Automatic", min(steps or 1, 4), 1.0, size=512)
    if kind == "lightning":
        return FewStepPreset("lightning", "Euler", "SGM Uniform", steps or 4, 1.0)
    if kind == "hyper":
        guidance = 5.0 if cfg_preserved else 1.0
        if steps == 1:
            return FewStepPreset("hyper", "TCD", "Automatic", 1, guidance, tcd_gamma=1.0)
        return FewStepPreset("hyper", "DDIM", "SGM Uniform", steps or 8, guidance)
    if kind == "tcd":
        return FewStepPreset("tcd", "TCD", "Automatic", steps or 4, 1.0, tcd_gamma=0.3)
    raise ValueError(f"unknown few-step kind {kind!r}; choose one of {', '.join(KIND_LABELS)}")


def kind_in(text: str) -> str | None:
    """The few-step kind a name or title mentions, if any."""
    lowered = text.lower()
    return next((kind for kind, pattern in _PATTERNS if pattern.search(lowered)), None)


def steps_in(text: str) -> int | None:
    """``4step`` / ``8-steps`` / ``2 step`` in a name → 4 / 8 / 2."""
    found = _STEPS.search(text.lower())
    return int(found.group(1)) if found else None


def recognise(
    name: str, metadata: dict[str, str] | None = None, *, embeds_guidance: bool = False
) -> FewStepPreset | None:
    """The preset for a file called ``name`` whose header carries ``metadata``; None for an ordinary one.

    The header's own names win over the file name (a renamed file keeps its title). A UNet that
    embeds the guidance scale (``time_cond_proj_dim``: a full LCM-distilled model) takes LCM's
    usual w = 8 as its CFG, which costs nothing there: it never runs a CFG batch.
    """
    metadata = metadata or {}
    texts = [str(metadata[key]) for key in NAME_KEYS if metadata.get(key)]
    for source, candidates in (("metadata", texts), ("name", [name])):
        for text in candidates:
            kind = kind_in(text)
            if kind is None:
                continue
            preset = preset_for(kind, steps_in(text), cfg_preserved="cfg" in text.lower() and kind == "hyper")
            if kind == "lcm" and embeds_guidance:
                preset = dataclasses.replace(preset, guidance=8.0)
            return dataclasses.replace(preset, source=source)
    if embeds_guidance:  # only LCM distillation adds the w-embedding, whatever the file is called
        return dataclasses.replace(preset_for("lcm"), guidance=8.0, source="metadata")
    return None


def header_metadata(path: Path) -> dict[str, str]:
    """A safetensors file's ``__metadata__`` (empty for other files or an unreadable header)."""
    from ldm_studio.engine.checkpoints.tensors import read_safetensors_header
    from ldm_studio.engine.errors import ModelLoadError

    if path.suffix.lower() != ".safetensors" or not path.is_file():
        return {}
    try:
        table = read_safetensors_header(path)
    except ModelLoadError:
        return {}
    return dict(table.metadata)


def _folder_embeds_guidance(folder: Path) -> bool:
    try:
        config = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("time_cond_proj_dim") is not None


def _file_embeds_guidance(path: Path) -> bool:
    """A single-file checkpoint with LCM's guidance projection (original or diffusers key names)."""
    from ldm_studio.engine.checkpoints.tensors import read_safetensors_header
    from ldm_studio.engine.errors import ModelLoadError

    if path.suffix.lower() != ".safetensors":
        return False
    try:
        names = read_safetensors_header(path).shapes
    except ModelLoadError:
        return False
    return any(
        name.endswith(("time_embed.cond_proj.weight", "time_embedding.cond_proj.weight")) for name in names
    )


def recognise_path(path: Path, settings: dict[str, Any] | None = None) -> FewStepPreset | None:
    """The preset for a model or LoRA on disk; the user's choice (``settings["few_step"]``) wins."""
    path = Path(path)
    chosen = (settings or {}).get(SETTING_KEY)
    if chosen == NOT_DISTILLED:
        return None
    if chosen in KIND_LABELS:
        return dataclasses.replace(preset_for(str(chosen), steps_in(path.name)), source="settings")
    if path.is_dir():
        return recognise(path.name, {}, embeds_guidance=_folder_embeds_guidance(path))
    return recognise(path.stem, header_metadata(path), embeds_guidance=_file_embeds_guidance(path))
