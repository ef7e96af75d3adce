"""SD 3.x and FLUX.1 single files, recognised from the safetensors header alone.

The layouts people keep: BFL's FLUX transformer on its own (``double_blocks.*``, as BFL publishes
flux1-dev / flux1-schnell), Stability's SD 3 files and ComfyUI's "all in one" checkpoints
(``model.diffusion_model.*`` with ``text_encoders.clip_l/clip_g/t5xxl.*`` and the VAE as
``first_stage_model.*`` or ``vae.*``), and diffusers-named transformers (``transformer_blocks.*``).
This says which family and variant a file is, which parts are inside and which are missing, and
where to point the app. FLUX.1 and SD 3.x .safetensors files load (engine.checkpoints.flow_single_file,
sd3_single_file); for pickled files, and SD 3 GGUF files, the sentence names the diffusers folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "model.", "")


def with_article(name: str) -> str:
    """ "a FLUX.1 dev", "an SD 3.5 Large": the article as the name is read aloud."""
    return f"{'an' if name.startswith('SD') else 'a'} {name}"


@dataclass(frozen=True)
class FlowFile:
    family: str  # "sd3" / "flux"
    variant: str
    layout: str  # "BFL", "ComfyUI all-in-one", "Stability", "diffusers"
    parts: tuple[str, ...]  # what is inside: transformer, clip_l, clip_g, t5xxl, vae
    missing: tuple[str, ...]

    @property
    def reason(self) -> str:
        inside = ", ".join(self.parts)
        missing = f"; it lacks {', '.join(self.missing)}" if self.missing else ""
        return (
            f"this is {with_article(self.variant)} file in the {self.layout} layout "
            f"(inside: {inside}{missing}). "
            "LDM Studio loads FLUX.1 and SD 3.x .safetensors files (and FLUX.1 GGUF files), but not pickled "
            "SD 3 / FLUX files nor SD 3 GGUF files: open the model's diffusers folder (the one with "
            "model_index.json) or its .safetensors file instead"
        )


def _transformer_keys(names: Iterable[str]) -> tuple[str, list[str]]:
    """The prefix the denoiser's keys sit under and those keys without it."""
    names = list(names)
    for prefix in _PREFIXES[:-1]:
        inner = [name[len(prefix) :] for name in names if name.startswith(prefix)]
        if any(
            re.match(r"(joint_blocks|double_blocks|single_blocks|transformer_blocks)\.\d+\.", n)
            for n in inner
        ):
            return prefix, inner
    return "", names


def describe_flow_file(names: Iterable[str]) -> FlowFile | None:
    """The SD 3 / FLUX file these tensor names make up, or None when they are something else."""
    names = list(names)
    prefix, keys = _transformer_keys(names)
    key_set = set(keys)

    def has(pattern: str) -> bool:
        return any(re.match(pattern, key) for key in key_set)

    if has(r"double_blocks\.\d+\.img_attn\.") or has(r"single_transformer_blocks\.\d+\."):
        family = "flux"
        dev = has(r"guidance_in\.") or has(r"time_text_embed\.guidance_embedder\.")
        variant = "FLUX.1 dev" if dev else "FLUX.1 schnell"
        layout = "diffusers" if has(r"single_transformer_blocks\.") else "BFL"
        wanted = ("transformer", "clip_l", "t5xxl", "vae")
    elif has(r"joint_blocks\.\d+\.x_block\.") or has(r"transformer_blocks\.\d+\.attn\.add_q_proj\."):
        family = "sd3"
        if has(r"joint_blocks\.\d+\.x_block\.attn2\.") or has(r"transformer_blocks\.\d+\.attn2\."):
            variant = "SD 3.5 Medium"
        elif has(r"joint_blocks\.\d+\.x_block\.attn\.ln_q\.") or has(
            r"transformer_blocks\.\d+\.attn\.norm_q\."
        ):
            variant = "SD 3.5 Large"
        else:
            variant = "SD 3"
        layout = "diffusers" if has(r"transformer_blocks\.") else "Stability"
        wanted = ("transformer", "clip_l", "clip_g", "t5xxl", "vae")
    else:
        return None
    parts = ["transformer"]
    for encoder in ("clip_l", "clip_g", "t5xxl"):
        if any(name.startswith(f"text_encoders.{encoder}.") for name in names):
            parts.append(encoder)
    if any(name.startswith(("first_stage_model.", "vae.")) for name in names):
        parts.append("vae")
    if prefix == "model.diffusion_model." and len(parts) > 1:
        layout = "ComfyUI all-in-one"
    missing = tuple(part for part in wanted if part not in parts)
    return FlowFile(family, variant, layout, tuple(parts), missing)
