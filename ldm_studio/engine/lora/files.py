"""Reading LoRA files: kohya/A1111/LyCORIS and diffusers/PEFT key layouts, safetensors and safe pickles.

``.pt`` / ``.ckpt`` files go through the project's safe unpickling (``torch.load(weights_only=True)``,
engine.checkpoints.pickles): a pickle that asks for code is refused before anything runs.
Parsed files are kept in a small cache keyed by (path, size, mtime), so changing a weight or switching
between a few LoRAs does not read them again.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from pathlib import Path

import torch

from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.lora.errors import LoraError
from ldm_studio.engine.lora.flux_names import flux_to_diffusers, is_flux_layout
from ldm_studio.engine.lora.naming import KOHYA_PREFIXES, TE1, TE2, TRANSFORMER, UNET
from ldm_studio.engine.lora.network import (
    FULL,
    LOHA,
    LOKR,
    LORA,
    UNSUPPORTED_TYPES,
    LayerPatch,
    LoraNetwork,
    build_layer,
)

# kohya / LyCORIS: "<layer>.<suffix>"; the layer name holds no dots.
KOHYA_FACTORS: dict[str, tuple[str | None, str]] = {
    "lora_down.weight": (LORA, "down"),
    "lora_up.weight": (LORA, "up"),
    "lora_mid.weight": (LORA, "mid"),
    "hada_w1_a": (LOHA, "w1a"),
    "hada_w1_b": (LOHA, "w1b"),
    "hada_w2_a": (LOHA, "w2a"),
    "hada_w2_b": (LOHA, "w2b"),
    "hada_t1": (LOHA, "t1"),
    "hada_t2": (LOHA, "t2"),
    "lokr_w1": (LOKR, "w1"),
    "lokr_w1_a": (LOKR, "w1a"),
    "lokr_w1_b": (LOKR, "w1b"),
    "lokr_w2": (LOKR, "w2"),
    "lokr_w2_a": (LOKR, "w2a"),
    "lokr_w2_b": (LOKR, "w2b"),
    "lokr_t1": (LOKR, "t1"),
    "lokr_t2": (LOKR, "t2"),
    "diff": (FULL, "diff"),
    "alpha": (None, "alpha"),
    "scale": (None, "scale"),
}
# diffusers / PEFT: the dotted module path, then one of these endings.
_DOTTED_FACTORS = [
    (re.compile(r"^(?P<path>.+)\.lora_(?P<which>A|B)(?:\.default)?\.weight$"), LORA),
    (re.compile(r"^(?P<path>.+)\.lora(?:_linear_layer)?\.(?P<which>down|up)\.weight$"), LORA),
    (
        re.compile(
            r"^(?P<path>.+?)(?:\.processor)?\.(?P<proj>to_q|to_k|to_v|to_out)_lora\.(?P<which>down|up)\.weight$"
        ),
        LORA,
    ),
    (re.compile(r"^(?P<path>.+)\.(?P<which>alpha)$"), None),
]
_WHICH = {"A": "down", "B": "up", "down": "down", "up": "up", "alpha": "alpha"}
_OLD_TEXT_PROJECTIONS = {"to_q": "q_proj", "to_k": "k_proj", "to_v": "v_proj", "to_out": "out_proj"}
DOTTED_PREFIXES = {"unet.": UNET, "text_encoder.": TE1, "text_encoder_2.": TE2, "transformer.": TRANSFORMER}
_UNET_ROOTS = ("down_blocks.", "mid_block.", "up_blocks.", "conv_in", "conv_out", "time_embedding.")
# Roots of networks this engine does not run; a LoRA for them is refused by name.
FOREIGN_PREFIXES = {
    "lora_transformer_": "SD 3 in kohya's names, which cannot be mapped yet (a diffusers-format file works)",
    "lora_te3_": "a model with a T5 text encoder (SD3 or similar)",
    "lycoris_": "a model other than Stable Diffusion 1.x/2.x/XL",
}


def _part_and_name(key: str) -> tuple[str, str, str] | None:
    """(part, layer name, suffix) for a kohya key; None when it is not kohya-style."""
    layer, dot, suffix = key.partition(".")
    if not dot:
        return None
    for prefix, part in KOHYA_PREFIXES.items():
        if layer.startswith(prefix):
            return part, layer, suffix
    return None


def _dotted(key: str) -> tuple[str, str, str | None, str] | None:
    """(part, module path, kind, factor) for a diffusers/PEFT key; None when it is not one."""
    part = next((p for prefix, p in DOTTED_PREFIXES.items() if key.startswith(prefix)), None)
    rest = key
    if part is not None:
        rest = key.split(".", 1)[1]
    elif key.startswith(_UNET_ROOTS):
        part = UNET  # diffusers' old attention-processor files hold the UNet alone, without a prefix
    else:
        return None
    for pattern, kind in _DOTTED_FACTORS:
        match = pattern.match(rest)
        if match:
            path = match["path"]
            projection = match.groupdict().get("proj")
            if projection:
                if part == UNET:
                    path = f"{path}.{'to_out.0' if projection == 'to_out' else projection}"
                else:
                    path = f"{path}.{_OLD_TEXT_PROJECTIONS[projection]}"
            return part, path, kind, _WHICH[match["which"]]
    return None


def _unsupported_type(suffix: str) -> str | None:
    components = suffix.split(".")
    for marker, type_name in UNSUPPORTED_TYPES.items():
        if marker in components or suffix.endswith(marker) or f"{marker}." in suffix:
            return type_name
    return None


def _peft_alphas(metadata: dict[str, str]) -> dict[str, float]:
    """``lora_alpha`` per part from diffusers' ``lora_adapter_metadata`` (PEFT files without .alpha keys)."""
    raw = metadata.get("lora_adapter_metadata")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    alphas = {}
    for prefix, part in DOTTED_PREFIXES.items():
        value = data.get(f"{prefix}lora_alpha") if isinstance(data, dict) else None
        if isinstance(value, (int, float)):
            alphas[part] = float(value)
    return alphas


def lora_from_tensors(
    tensors: dict[str, torch.Tensor], name: str, metadata: dict[str, str] | None = None, source: str = ""
) -> LoraNetwork:
    """Group a LoRA file's tensors into layers; raise LoraError for files we cannot apply."""
    metadata = dict(metadata or {})
    if not tensors:
        raise LoraError(f"{name} holds no tensors: it is not a LoRA")
    if is_flux_layout(tensors):
        tensors = flux_to_diffusers(tensors, name)
    for key in tensors:
        for prefix, what in FOREIGN_PREFIXES.items():
            if key.startswith(prefix):
                raise LoraError(
                    f"{name} is a LoRA for {what}; "
                    "LDM Studio applies LoRAs to SD 1.x, 2.x, SDXL, SD 3 and FLUX.1"
                )
    groups: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    kinds: dict[tuple[str, str], set[str]] = {}
    ignored: list[str] = []
    for key, tensor in tensors.items():
        kohya = _part_and_name(key)
        if kohya is not None:
            part, layer, suffix = kohya
            type_name = _unsupported_type(suffix)
            kind, factor = KOHYA_FACTORS.get(suffix, (None, ""))
        else:
            dotted = _dotted(key)
            if dotted is None:
                type_name = _unsupported_type(key)
                if type_name is None:
                    ignored.append(key)
                    continue
                part, layer, kind, factor = UNET, key, None, ""
            else:
                part, layer, kind, factor = dotted
                type_name = None
        if type_name:
            raise LoraError(
                f"{name} is a {type_name} file, which LDM Studio does not apply yet "
                "(LoRA, LoCon, LoHa and LoKr files work)"
            )
        if not factor:
            ignored.append(key)  # bias deltas (diff_b), LyCORIS extras: reported, not applied
            continue
        groups.setdefault((part, layer), {})[factor] = tensor
        if kind is not None:
            kinds.setdefault((part, layer), set()).add(kind)
    peft_alphas = _peft_alphas(metadata)
    layers: dict[tuple[str, str], LayerPatch] = {}
    for key, values in groups.items():
        layer_kinds = kinds.get(key, set())
        if not layer_kinds:
            ignored.extend(f"{key[1]}.{factor}" for factor in values)  # an alpha without factors
            continue
        if len(layer_kinds) > 1:
            raise LoraError(
                f"{name} is damaged: layer {key[1]} mixes {' and '.join(sorted(layer_kinds))} factors"
            )
        if "alpha" not in values and key[0] in peft_alphas:
            values["alpha"] = torch.tensor(peft_alphas[key[0]])
        layers[key] = build_layer(key[0], key[1], layer_kinds.pop(), values, name)
    if not layers:
        raise LoraError(
            f"{name} holds no LoRA layers LDM Studio recognises ({len(tensors)} tensors, "
            f"e.g. {next(iter(tensors))}); it is not a LoRA, or of a kind not supported yet"
        )
    return LoraNetwork(name, layers, metadata, source, tuple(ignored))


def _file_identity(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError as error:
        raise LoraError(f"{path.name} cannot be read: {error.strerror or error}") from error
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors of a LoRA/embedding file and its text metadata, on the CPU, without running code."""
    from ldm_studio.engine.checkpoints.pickles import load_state_dict, sniff_format
    from ldm_studio.engine.checkpoints.tensors import read_safetensors_header

    path = Path(path)
    try:
        kind = sniff_format(path)
        if kind == "safetensors":
            table = read_safetensors_header(path)
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu"), table.metadata
        if path.suffix.lower() == ".safetensors":
            raise LoraError(f"{path.name} is not a valid safetensors file (its first bytes are not a header)")
        return load_state_dict(path, mmap=False), {}
    except ModelLoadError as error:
        raise LoraError(str(error)) from error
    except (OSError, RuntimeError, ValueError) as error:  # safetensors' own errors on a damaged file
        raise LoraError(f"{path.name} could not be read: {error}") from error


def read_lora(path: Path) -> LoraNetwork:
    """Open one LoRA file; raise LoraError with a sentence when it cannot be read or applied."""
    path = Path(path)
    identity = _file_identity(path)
    tensors, metadata = read_tensors(path)
    return lora_from_tensors(tensors, path.stem, metadata, source="|".join(map(str, identity)))


class LoraFileCache:
    """Parsed LoRA files by (path, size, mtime); beyond ``max_files``/``max_bytes`` the least recent go."""

    def __init__(self, max_files: int = 8, max_bytes: int = 2 * 1024**3) -> None:
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._files: OrderedDict[tuple[str, int, int], LoraNetwork] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> LoraNetwork:
        identity = _file_identity(Path(path))
        with self._lock:
            cached = self._files.get(identity)
            if cached is not None:
                self._files.move_to_end(identity)
                return cached
        network = read_lora(Path(path))
        with self._lock:
            self._files[identity] = network
            while len(self._files) > self.max_files or (
                len(self._files) > 1 and sum(key[1] for key in self._files) > self.max_bytes
            ):
                self._files.popitem(last=False)
        return network

    def __len__(self) -> int:
        return len(self._files)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()
