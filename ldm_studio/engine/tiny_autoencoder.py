"""Tiny autoencoders (TAESD, TAESDXL, TAESD3, TAEF1): a real-looking image from latents at a small
fraction of the VAE's cost, for previews and draft decodes.

Three layouts are read, all onto diffusers' ``AutoencoderTiny``:

- a diffusers folder (``config.json`` + weights);
- the original release: ``taesd_decoder.pth`` / ``taesd_encoder.pth`` (or ``.safetensors``), whose
  tensors are a bare ``nn.Sequential`` (``1.weight``, ``3.conv.0.weight``…). The encoder's indices
  are diffusers' ``encoder.layers.N``; the decoder's are one higher than ``decoder.layers.N``,
  because the original decoder starts with a Clamp module where diffusers clamps in ``forward``;
- one file with diffusers' names (``decoder.layers.0.weight``…).

Latent channels (4 for SD 1.x/2.x/SDXL, 16 for SD3/FLUX) come from the tensors. Which model family
a file was trained for does not: TAESD and TAESDXL have identical shapes, and so do TAESD3 and
TAEF1. The file name tells ("taesdxl_decoder"); otherwise the user's choice must.

TAESD works on *unscaled* latents (what the VAE's encoder outputs), so ``AutoencoderTiny``'s own
``scaling_factor`` is 1.0. The UNet sees ``(latents - shift) * scaling_factor`` of the model's VAE;
``decode`` undoes exactly that. (``latent_magnitude``/``latent_shift`` in its config only serve to
store latents as 8-bit images; decoding does not use them.)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldm_studio.engine.catalog import TINY_AUTOENCODER, find_models, library_folders
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.upscalers.files import load_tensors, tensor_shapes

# family -> the model families it fits (engine.catalog FAMILIES keys where they exist)
VARIANT_FITS = {
    "taesd": ("sd1", "sd2"),
    "taesdxl": ("sdxl",),
    "taesd3": ("sd3",),
    "taef1": ("flux",),
}
NAME_HINTS = (("taesdxl", r"xl"), ("taesd3", r"sd3|sd-3"), ("taef1", r"taef1|flux|f1"))
ORIGINAL_KEY = re.compile(r"^(\d+)\.(.+)$")
DIFFUSERS_KEY = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.(.+)$")


@dataclass(frozen=True)
class TinyAutoencoderInfo:
    name: str
    path: Path
    layout: str  # "diffusers folder", "original", "diffusers file", or "unreadable"
    latent_channels: int | None
    variant: str | None  # "taesd", "taesdxl", "taesd3", "taef1"; None when only the user can tell
    has_encoder: bool
    has_decoder: bool
    size: int
    problem: str = ""

    @property
    def fits(self) -> tuple[str, ...]:
        """Model families it can decode for (every family of that latent size when the variant is unknown)."""
        if self.variant:
            return VARIANT_FITS[self.variant]
        if self.latent_channels == 4:
            return ("sd1", "sd2", "sdxl")
        return ("sd3", "flux") if self.latent_channels == 16 else ()


def guess_variant(name: str, latent_channels: int | None) -> str | None:
    lowered = name.lower()
    for variant, pattern in NAME_HINTS:
        if (
            re.search(pattern, lowered)
            and len(VARIANT_FITS[variant])
            and _channels(variant) == latent_channels
        ):
            return variant
    if latent_channels == 4 and "taesd" in lowered:
        return "taesd"
    return None


def _channels(variant: str) -> int:
    return 4 if variant in ("taesd", "taesdxl") else 16


# --- reading the layouts -----------------------------------------------------------------------


def diffusers_names(shapes: dict[str, tuple[int, ...]], name: str) -> dict[str, str]:
    """Each file key under diffusers' name (``encoder.layers.N…``, ``decoder.layers.N…``)."""
    if all(DIFFUSERS_KEY.match(key) for key in shapes):
        return {key: key for key in shapes}
    if not shapes or not all(ORIGINAL_KEY.match(key) for key in shapes):
        raise ModelLoadError(f"{name} is not a tiny autoencoder (TAESD): its tensors have other names")
    first = shapes.get("0.weight")
    if first is not None and len(first) == 4 and first[1] == 3:  # takes RGB: an encoder
        return {key: f"encoder.layers.{key}" for key in shapes}
    if "1.weight" in shapes:  # index 0 is the decoder's Clamp
        renamed = {}
        for key in shapes:
            index, rest = ORIGINAL_KEY.match(key).groups()
            renamed[key] = f"decoder.layers.{int(index) - 1}.{rest}"
        return renamed
    raise ModelLoadError(f"{name} is not a tiny autoencoder (TAESD) encoder or decoder")


def _renamed(tensors: dict[str, Any], name: str) -> dict[str, Any]:
    names = diffusers_names({key: tuple(value.shape) for key, value in tensors.items()}, name)
    return {names[key]: value for key, value in tensors.items()}


def _part_config(shapes: dict[str, tuple[int, ...]], part: str) -> dict[str, Any] | None:
    """``AutoencoderTiny`` arguments for one half, read from which layers are blocks and which convs."""
    layers: dict[int, str] = {}
    channels: dict[int, int] = {}
    for key, shape in shapes.items():
        match = DIFFUSERS_KEY.match(key)
        if not match or match.group(1) != part:
            continue
        index, rest = int(match.group(2)), match.group(3)
        if rest == "weight" and len(shape) == 4:
            layers[index] = "conv"
            channels[index] = shape[0] if index else shape[1]
        elif rest == "conv.0.weight":
            layers[index] = "block"
            channels[index] = shape[0]
    if not layers:
        return None
    order = [layers[i] for i in sorted(layers)]
    counts, run = [], 0
    for kind in order[1:]:
        if kind == "block":
            run += 1
        else:
            counts.append(run)
            run = 0
    indices = sorted(layers)
    first, last = shapes[f"{part}.layers.{indices[0]}.weight"], shapes[f"{part}.layers.{indices[-1]}.weight"]
    width = first[0]
    if part == "encoder":
        return {
            "num_encoder_blocks": tuple(counts),
            "encoder_block_out_channels": (width,) * len(counts),
            "in_channels": first[1],
            "latent_channels": last[0],
        }
    return {
        "num_decoder_blocks": tuple(counts),
        "decoder_block_out_channels": (width,) * len(counts),
        "out_channels": last[0],
        "latent_channels": first[1],
    }


def _sibling(path: Path, want: str) -> Path | None:
    """taesd_decoder.pth -> taesd_encoder.pth (the original release ships the halves apart)."""
    other = "encoder" if want == "encoder" else "decoder"
    mine = "decoder" if want == "encoder" else "encoder"
    if mine not in path.name:
        return None
    candidate = path.with_name(path.name.replace(mine, other))
    return candidate if candidate.is_file() else None


# --- the public API ----------------------------------------------------------------------------


class TinyAutoencoder:
    """A loaded tiny autoencoder; ``model`` is a diffusers ``AutoencoderTiny``."""

    def __init__(self, model: Any, info: TinyAutoencoderInfo) -> None:
        self.model = model
        self.info = info

    def to(self, device: Any = None, dtype: Any = None) -> TinyAutoencoder:
        self.model.to(device=device, dtype=dtype)
        return self

    def decode(self, latents: Any, scaling_factor: float, shift: float = 0.0) -> Any:
        """Images in [-1, 1] from latents as the UNet sees them (the model VAE's scaling and shift)."""
        import torch

        if not self.info.has_decoder:
            raise ModelLoadError(f"{self.info.path.name} holds only an encoder; it cannot decode")
        parameter = next(self.model.decoder.parameters())
        raw = latents.to(parameter.device, parameter.dtype) / scaling_factor + shift
        with torch.inference_mode():
            return self.model.decoder(raw).clamp(-1, 1)

    def encode(self, images: Any, scaling_factor: float, shift: float = 0.0) -> Any:
        """Latents as the UNet sees them from images in [-1, 1]."""
        import torch

        if not self.info.has_encoder:
            raise ModelLoadError(f"{self.info.path.name} holds only a decoder; it cannot encode")
        parameter = next(self.model.encoder.parameters())
        with torch.inference_mode():
            raw = self.model.encoder(images.to(parameter.device, parameter.dtype))
        return (raw - shift) * scaling_factor


def describe_tiny_autoencoder(path: Path) -> TinyAutoencoderInfo:
    path = Path(path)
    try:
        if path.is_dir():
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
            if config.get("_class_name") != "AutoencoderTiny":
                raise ModelLoadError(
                    f"{path.name} is a {config.get('_class_name', 'model')} folder, not a tiny autoencoder"
                )
            channels = int(config.get("latent_channels", 4))
            size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
            return TinyAutoencoderInfo(
                path.name,
                path,
                "diffusers folder",
                channels,
                guess_variant(path.name, channels),
                True,
                True,
                size,
            )
        file_shapes = tensor_shapes(path)
        names = diffusers_names(file_shapes, path.name)
        shapes = {names[key]: shape for key, shape in file_shapes.items()}
        parts = {part: _part_config(shapes, part) for part in ("encoder", "decoder")}
        channels = next(config for config in parts.values() if config)["latent_channels"]
        layout = "diffusers file" if all(names[key] == key for key in names) else "original"
        return TinyAutoencoderInfo(
            path.stem,
            path,
            layout,
            channels,
            guess_variant(path.name, channels),
            parts["encoder"] is not None,
            parts["decoder"] is not None,
            path.stat().st_size,
        )
    except (ModelLoadError, OSError, ValueError, KeyError) as error:
        size = path.stat().st_size if path.is_file() else 0
        return TinyAutoencoderInfo(
            path.stem if path.is_file() else path.name,
            path,
            "unreadable",
            None,
            None,
            False,
            False,
            size,
            problem=str(error),
        )


def load_tiny_autoencoder(path: Path, *, device: str = "cpu") -> TinyAutoencoder:
    """Open any of the three layouts; an original decoder file picks up its encoder file beside it."""
    from diffusers import AutoencoderTiny

    path = Path(path)
    info = describe_tiny_autoencoder(path)
    if info.problem:
        raise ModelLoadError(info.problem)
    if path.is_dir():
        model = AutoencoderTiny.from_pretrained(str(path), local_files_only=True)
        return TinyAutoencoder(model.to(device).eval(), info)
    tensors = _renamed(load_tensors(path), path.name)
    for part in ("encoder", "decoder"):
        sibling = _sibling(path, part) if not any(k.startswith(part) for k in tensors) else None
        if sibling is not None:
            tensors.update(_renamed(load_tensors(sibling), sibling.name))
    shapes = {key: tuple(value.shape) for key, value in tensors.items()}
    config: dict[str, Any] = {"scaling_factor": 1.0, "shift_factor": 0.0}
    for part in ("encoder", "decoder"):
        config.update(_part_config(shapes, part) or {})
    model = AutoencoderTiny(**config)
    try:
        for part in ("encoder", "decoder"):
            part_tensors = {k[len(part) + 1 :]: v for k, v in tensors.items() if k.startswith(part + ".")}
            if part_tensors:
                getattr(model, part).load_state_dict(part_tensors, strict=True)
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1].strip()[:200]
        raise ModelLoadError(
            f"{path.name} looks like a tiny autoencoder but its tensors do not fit ({reason})"
        ) from error
    has = {part: any(k.startswith(part + ".") for k in tensors) for part in ("encoder", "decoder")}
    info = TinyAutoencoderInfo(
        info.name,
        info.path,
        info.layout,
        info.latent_channels,
        info.variant,
        has["encoder"],
        has["decoder"],
        info.size,
    )
    return TinyAutoencoder(model.to(device).eval(), info)


def tiny_autoencoder_folders() -> list[Path]:
    """The data dir's ``tiny_autoencoders/``, then added folders (A1111's ``models/VAE-approx``)."""
    return library_folders(TINY_AUTOENCODER)


def scan_tiny_autoencoders(folders: list[Path] | None = None) -> list[TinyAutoencoderInfo]:
    """Every tiny autoencoder in ``folders``, described from shapes; encoder halves are listed too.

    Files that are not TAESD (A1111's own ``VAE-approx/model.pt`` approximations sit in the same
    folder) come back with a ``problem`` rather than being dropped silently.
    """
    found: dict[Path, Path] = {}
    for folder in tiny_autoencoder_folders() if folders is None else folders:
        for path in find_models(Path(folder), TINY_AUTOENCODER):
            found.setdefault(path.resolve(), path)
    infos = [describe_tiny_autoencoder(path) for path in found.values()]
    return sorted(infos, key=lambda info: (info.name.lower(), str(info.path)))
