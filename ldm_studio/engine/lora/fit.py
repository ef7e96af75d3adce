"""Does a LoRA fit the loaded model? Every layer is mapped to a module; what does not fit is said in words.

A LoRA made for another family is refused (an SD 1.x LoRA on SDXL: its cross-attention layers read
768-wide text where SDXL's read 2048, and it has no second text encoder). A LoRA of which only some
layers match is applied with a notice that says how many layers of which part were left out, so a
file never silently changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ldm_studio.engine.catalog import family_label
from ldm_studio.engine.lora.errors import LoraError
from ldm_studio.engine.lora.naming import (
    PART_LABELS,
    TE1,
    TE2,
    TRANSFORMER,
    UNET,
    ModelParts,
    ModuleIndex,
    Target,
)
from ldm_studio.engine.lora.network import LoraNetwork

# The width of the text a UNet's cross-attention reads, and of the first text encoder, per family.
FAMILY_BY_CONTEXT_WIDTH = {768: "sd1", 1024: "sd2", 2048: "sdxl"}
FAMILY_BY_TEXT_WIDTH = {768: "sd1", 1024: "sd2"}
# Families whose LoRAs are told apart: one made for another of these is refused.
KNOWN_FAMILIES = ("sd1", "sd2", "sdxl", "sd3", "flux")


def family_from_metadata(metadata: dict[str, str]) -> str:
    """The base family kohya's ``ss_*`` or SAI's ``modelspec.*`` keys name, or ""."""
    architecture = metadata.get("modelspec.architecture", "")
    if architecture.startswith("flux-1"):
        return "flux"
    if architecture.startswith("stable-diffusion-v3"):
        return "sd3"
    if architecture.startswith("stable-diffusion-xl"):
        return "sdxl"
    if architecture.startswith("stable-diffusion-v2"):
        return "sd2"
    if architecture.startswith("stable-diffusion-v1"):
        return "sd1"
    version = metadata.get("ss_base_model_version", "")
    if version.startswith("ldm_studio"):  # what our trainer writes for LDM Studio's own models
        return "ldm-studio"
    if version.startswith("flux1"):
        return "flux"
    if version.startswith("sd3"):
        return "sd3"
    if version.startswith("sdxl"):
        return "sdxl"
    if version.startswith("sd_v2") or metadata.get("ss_v2") == "True":
        return "sd2"
    if version.startswith("sd_v1") or metadata.get("ss_v2") == "False":
        return "sd1"
    return ""


def family_from_layers(network: LoraNetwork) -> str:
    """The family the layer shapes betray: a second text encoder, or the text widths layers read."""
    if network.count(TRANSFORMER):
        # FLUX alone has single-stream blocks; joint blocks alone could be SD 3's or FLUX's
        names = [name for part, name in network.layers if part == TRANSFORMER]
        return "flux" if any("single_transformer_blocks" in name for name in names) else ""
    if network.count(TE2):
        return "sdxl"
    for (part, name), layer in network.layers.items():
        if "label_emb" in name or "add_embedding" in name:
            return "sdxl"
        shape = layer.delta_shape()
        if part == UNET and "attn2" in name and ("to_k" in name or "to_v" in name):
            return FAMILY_BY_CONTEXT_WIDTH.get(shape[1], "")
    for (part, name), layer in network.layers.items():
        if part == TE1 and ("q_proj" in name or "k_proj" in name):
            return FAMILY_BY_TEXT_WIDTH.get(layer.delta_shape()[1], "")
    return ""


def lora_family(network: LoraNetwork) -> str:
    """Shapes first (metadata is written by hand sometimes), then the metadata."""
    return family_from_layers(network) or family_from_metadata(network.metadata)


@dataclass(frozen=True)
class LoraFit:
    """Where each layer of one LoRA lands in the model, and what matched nothing."""

    network: LoraNetwork
    targets: dict[tuple[str, str], Target] = field(repr=False)
    unmatched: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def notice(self) -> str:
        """One sentence about left-out layers, or "" when every layer found its module."""
        pieces = []
        for part, names in self.unmatched.items():
            total = self.network.count(part)
            pieces.append(f"{len(names)} of {total} {PART_LABELS.get(part, part)} layers (e.g. {names[0]})")
        if not pieces:
            return ""
        return (
            f"{self.network.name}: {' and '.join(pieces)} match no layer of this model and are left out; "
            "the LoRA may have been made for a differently built model"
        )


def _label(family: str) -> str:
    return family_label(family) if family else "another kind of model"


def _made_for(made_for: str, model_family: str) -> str:
    """ "it was made for SDXL, the loaded model is SD 1.x" with the parts that are known."""
    text = f"it was made for {_label(made_for)}"
    return f"{text}, the loaded model is {family_label(model_family)}" if model_family else text


def _quantised(target: Target) -> bool:
    # diffusers' GGUFParameter holds raw quantised blocks (its shape is bytes, not weights); fp8-kept
    # weights (engine.checkpoints.fp8_weights) are cast up only inside their layer's forward
    from ldm_studio.engine.checkpoints.fp8_weights import FP8_DTYPES

    weight = target.module.weight
    return type(weight).__name__ == "GGUFParameter" or weight.dtype in FP8_DTYPES


def fit_lora(
    network: LoraNetwork,
    index: ModuleIndex,
    parts: ModelParts,
    *,
    model_family: str = "",
    strict: bool = False,
) -> LoraFit:
    """Map ``network`` onto the model; raise LoraError when it was made for another model."""
    name = network.name
    model_family = model_family or parts.family
    made_for = lora_family(network)
    if made_for and model_family in KNOWN_FAMILIES and made_for != model_family:
        raise LoraError(
            f"{name} is a LoRA for {_label(made_for)}, but the loaded model is {_label(model_family)}: "
            f"choose a LoRA made for {_label(model_family)}"
        )
    present = parts.named()
    targets: dict[tuple[str, str], Target] = {}
    unmatched: dict[str, list[str]] = {}
    misfits: list[str] = []
    for key, layer in network.layers.items():
        part, layer_name = key
        target = index.find(part, layer_name) if part in present else None
        if target is None:
            unmatched.setdefault(part, []).append(layer_name)
        elif _quantised(target):
            raise LoraError(
                f"{name} cannot be applied: this model's transformer is GGUF-quantised or kept in fp8, "
                "whose weights cannot be patched; use an fp16 / bf16 (safetensors) model for LoRAs"
            )
        elif not layer.fits(tuple(target.weight.shape)):
            misfits.append(
                f"{layer_name} changes a {'×'.join(map(str, layer.delta_shape()))} weight where the "
                f"model's is {'×'.join(map(str, target.weight.shape))}"
            )
        else:
            targets[key] = target
    total = len(network.layers)
    if misfits:
        raise LoraError(
            f"{name} does not fit this model: {len(misfits)} of its {total} layers have other shapes "
            f"(e.g. {misfits[0]}); {_made_for(made_for, model_family)}"
        )
    if not targets:
        parts_named = ", ".join(f"{len(v)} {PART_LABELS.get(p, p)}" for p, v in unmatched.items())
        raise LoraError(
            f"None of the {total} layers of {name} ({parts_named}) match a layer of this model: "
            f"{_made_for(made_for, model_family)}"
        )
    fit = LoraFit(network, targets, {part: tuple(names) for part, names in unmatched.items()})
    if strict and fit.notice:
        raise LoraError(fit.notice)
    return fit
