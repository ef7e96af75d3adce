"""What a model file or folder is, as far as we can tell before loading it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ldm_studio.engine.catalog import FAMILY_LABELS as FAMILY_LABELS  # re-exported: one family table
from ldm_studio.engine.catalog import family_label
from ldm_studio.engine.checkpoints.layout import TextEncoderLayout, UNetLayout, VaeLayout

SUPPORTED = (
    "supported: Stable Diffusion 1.x, 2.x (512 epsilon and 768-v) and SDXL base checkpoints "
    "(.safetensors or .ckpt in the original layout) and diffusers model folders"
)
FLOW_FAMILIES = ("flux", "sd3")  # flow matching, transformer denoisers (engine.flow_models)
# Bytes of working memory per (latent pixel x first-level UNet channel) for one CFG step, and per
# image pixel for the VAE decode, plus the Python/torch/diffusers runtime itself; checked against
# bench/sd15_size.py (SD 1.5 size, fp32, 512 px: 6.07 GB peak RSS measured, 6.08 GB estimated).
UNET_WORKSPACE_PER_LATENT_CHANNEL = 2 * 4 * 30
VAE_WORKSPACE_PER_PIXEL = 128 * 4 * 6
RUNTIME_BYTES = 700_000_000


def estimate_memory(
    parameters: int, native_size: int, first_channels: int, bytes_per_parameter: int = 4
) -> int:
    """Rough peak memory to generate one image (CFG, batch 1) at ``native_size`` pixels."""
    latent_pixels = (native_size // 8) ** 2
    work = (
        latent_pixels * first_channels * UNET_WORKSPACE_PER_LATENT_CHANNEL
        + native_size**2 * VAE_WORKSPACE_PER_PIXEL
    )
    return parameters * bytes_per_parameter + work * bytes_per_parameter // 4 + RUNTIME_BYTES


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    file_type: str  # "safetensors", "ckpt" (any pickle) or "diffusers" (a folder)
    family: str  # an engine.catalog.FAMILIES key
    loadable: bool
    reason: str  # why it cannot load, or "" when it can
    file_size: int  # bytes on disk (a folder: all its files)
    prediction_type: str = "epsilon"  # "epsilon" or "v_prediction"
    prediction_source: str = ""  # where the guess came from, for the user
    zero_terminal_snr: bool = False
    parameters: dict[str, int] = field(default_factory=dict)  # per component
    weight_dtype: str = ""  # storage type of most weights: "F16", "F32", "BF16"
    unet: UNetLayout | None = None
    text_encoders: tuple[TextEncoderLayout, ...] = ()
    vae: VaeLayout | None = None
    native_size: int = 512  # image side the model was trained at
    notes: tuple[str, ...] = ()
    # parts held in memory as stored, by their real size (a GGUF transformer stays quantised)
    stored_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def family_label(self) -> str:
        return family_label(self.family)

    @property
    def parameter_count(self) -> int:
        return sum(self.parameters.values())

    @property
    def needs_vae(self) -> bool:
        """A full model whose file lacks the VAE: it loads once a separate VAE is chosen."""
        return self.unet is not None and self.vae is None and self.family in ("sd1", "sd2", "sdxl")

    def memory_estimate(self, bytes_per_parameter: int = 4) -> int:
        """Rough peak memory to generate one image at the native size (weights + working memory)."""
        if self.family in FLOW_FAMILIES:  # SD 3 / FLUX: every part counted (engine.flow_models)
            from ldm_studio.engine.flow_models import memory_needed

            precision = "float32" if bytes_per_parameter >= 4 else "float16"
            return memory_needed(self.parameters, precision, self.stored_bytes)
        if self.unet is None:
            return self.parameter_count * bytes_per_parameter
        first_channels = self.unet.block_out_channels[0]
        return estimate_memory(self.parameter_count, self.native_size, first_channels, bytes_per_parameter)

    @property
    def memory_bytes(self) -> int:
        """The fp32 estimate (CPU default); ``memory_estimate(2)`` gives fp16/bf16."""
        return self.memory_estimate(4)

    def layout_lines(self) -> list[str]:
        lines = []
        if self.unet is not None:
            lines.append(f"UNet: {self.unet.describe()}")
        lines.extend(f"Text encoder: {encoder.describe()}" for encoder in self.text_encoders)
        if self.vae is not None:
            lines.append(f"VAE: {self.vae.describe()}")
        return lines
