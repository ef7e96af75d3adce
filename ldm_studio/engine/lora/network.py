"""A LoRA file's layers and the weight change each one makes (ΔW), for every format we apply.

``ΔW`` is always computed in float32 from the file's factors:

- LoRA / LoCon: ``up @ down`` (conv kernels flattened, then reshaped), with a Tucker ``mid`` core
  for LyCORIS' 3×3 LoCon: ``ΔW[o,c,k,l] = Σ up[o,a]·mid[a,b,k,l]·down[b,c]``;
- LoHa: ``(w1a @ w1b) ⊙ (w2a @ w2b)`` (Tucker: each factor rebuilt from its core ``t1``/``t2``);
- LoKr: ``w1 ⊗ w2`` (Kronecker), each factor full or a product ``a @ b``;
- a full difference (LyCORIS ``diff``).

Each is scaled by ``alpha / rank`` where the file has an alpha (an explicit ``scale`` wins), as A1111
does. Formats whose effect is not a weight delta of this kind are refused in a sentence that names them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ldm_studio.engine.lora.errors import LoraError
from ldm_studio.engine.lora.naming import PART_LABELS

LORA, LOHA, LOKR, FULL = "LoRA", "LoHa", "LoKr", "full"
# Factors each kind needs (besides optional ones) to be computable.
_REQUIRED = {LORA: ("down", "up"), LOHA: ("w1a", "w1b", "w2a", "w2b"), FULL: ("diff",)}
# Keys of LyCORIS / PEFT variants that are not weight deltas we compute, by the name users know them by.
UNSUPPORTED_TYPES = {
    "dora_scale": "DoRA",
    "lora_magnitude_vector": "DoRA",
    "oft_blocks": "OFT",
    "oft_diag": "OFT",
    "boft_blocks": "BOFT",
    "a1.weight": "GLoRA",
    "b1.weight": "GLoRA",
    "on_input": "(IA)³",
    "w_norm": "a norm-layer LyCORIS",
    "b_norm": "a norm-layer LyCORIS",
}


@dataclass(frozen=True)
class LayerPatch:
    """The factors one file stores for one layer, and how to turn them into ΔW."""

    part: str  # naming.UNET / TE1 / TE2
    name: str  # the layer as the file names it (kohya name or dotted diffusers path)
    kind: str  # LORA / LOHA / LOKR / FULL
    factors: dict[str, torch.Tensor] = field(repr=False)
    alpha: float | None = None
    scale: float | None = None  # an explicit multiplier stored in the file (A1111 honours it)

    @property
    def rank(self) -> int | None:
        """The inner dimension alpha is divided by; None where the factors are full (LoKr, diff)."""
        f = self.factors
        if self.kind == LORA:
            return int(f["down"].shape[0])
        if self.kind == LOHA:
            return int(f["w1b"].shape[0])
        if self.kind == LOKR:
            for name in ("w1b", "w2b"):
                if name in f:
                    return int(f[name].shape[0])
        return None

    @property
    def multiplier(self) -> float:
        if self.scale is not None:
            return self.scale
        rank = self.rank
        return self.alpha / rank if self.alpha is not None and rank else 1.0

    @property
    def out_features(self) -> int:
        return self.delta_shape()[0]

    def delta_shape(self) -> tuple[int, ...]:
        """The shape of ΔW before it is reshaped onto the layer, read from the factors' shapes."""
        f = self.factors
        if self.kind == LORA:
            if "mid" in f:
                return (f["up"].shape[0], f["down"].shape[1], *f["mid"].shape[2:])
            return (f["up"].shape[0], *f["down"].shape[1:])
        if self.kind == LOHA:
            if "t1" in f:
                return (f["w1a"].shape[1], f["w1b"].shape[1], *f["t1"].shape[2:])
            return (f["w1a"].shape[0], math.prod(f["w1b"].shape[1:]))
        if self.kind == LOKR:
            w1, w2 = self._lokr_shape("1"), self._lokr_shape("2")
            return (w1[0] * w2[0], w1[1] * w2[1], *w2[2:])
        return tuple(f["diff"].shape)

    def _lokr_shape(self, which: str) -> tuple[int, ...]:
        f = self.factors
        if f"w{which}" in f:
            return tuple(f[f"w{which}"].shape)
        if f"t{which}" in f:
            return (f[f"w{which}a"].shape[1], f[f"w{which}b"].shape[1], *f[f"t{which}"].shape[2:])
        return (f[f"w{which}a"].shape[0], f[f"w{which}b"].shape[1])

    def fits(self, weight_shape: torch.Size | tuple[int, ...]) -> bool:
        shape = self.delta_shape()
        return shape[0] == weight_shape[0] and math.prod(shape) == math.prod(weight_shape)

    def delta(
        self, weight_shape: torch.Size | tuple[int, ...], device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """ΔW (float32, on ``device``, already scaled by alpha/rank) in the layer's own shape."""
        f = {name: tensor.to(device=device, dtype=torch.float32) for name, tensor in self.factors.items()}
        if self.kind == LORA:
            delta = _lora(f)
        elif self.kind == LOHA:
            delta = _factor(f, "w1a", "w1b", "t1") * _factor(f, "w2a", "w2b", "t2")
        elif self.kind == LOKR:
            delta = _kron(_lokr_factor(f, "1"), _lokr_factor(f, "2"))
        else:
            delta = f["diff"]
        return (delta * self.multiplier).reshape(weight_shape)

    def add_to(self, accumulator: torch.Tensor, weight: float) -> None:
        """``accumulator += weight · ΔW`` in place (float32, the layer's shape).

        A plain LoRA goes through one ``addmm_`` on the weight seen as a matrix, so ΔW is never
        materialised: for SD 1.5 that saves a 1.4 GB round trip through memory per change.
        """
        f = self.factors
        if self.kind == LORA and "mid" not in f and accumulator.is_contiguous():
            device = accumulator.device
            up = f["up"].to(device=device, dtype=torch.float32).flatten(1)
            down = f["down"].to(device=device, dtype=torch.float32).flatten(1)
            accumulator.view(up.shape[0], -1).addmm_(up, down, alpha=weight * self.multiplier)
            return
        accumulator.add_(self.delta(accumulator.shape, accumulator.device), alpha=weight)


def _lora(f: dict[str, torch.Tensor]) -> torch.Tensor:
    down, up = f["down"], f["up"]
    if "mid" in f:
        return torch.einsum("abkl,oa,bc->ockl", f["mid"], up.flatten(1), down.flatten(1))
    product = up.flatten(1) @ down.flatten(1)
    return product.reshape(up.shape[0], *down.shape[1:])


def _rebuild_tucker(core: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # LyCORIS stores both factors of a Tucker pair as (rank, features).
    return torch.einsum("ijkl,ip,jr->prkl", core, a, b)


def _factor(f: dict[str, torch.Tensor], a: str, b: str, core: str) -> torch.Tensor:
    if core in f:
        return _rebuild_tucker(f[core], f[a], f[b])
    return f[a] @ f[b].flatten(1)


def _lokr_factor(f: dict[str, torch.Tensor], which: str) -> torch.Tensor:
    if f"w{which}" in f:
        return f[f"w{which}"]
    return _factor(f, f"w{which}a", f"w{which}b", f"t{which}")


def _kron(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    while w1.dim() < w2.dim():
        w1 = w1.unsqueeze(-1)
    while w2.dim() < w1.dim():
        w2 = w2.unsqueeze(-1)
    return torch.kron(w1.contiguous(), w2.contiguous())


@dataclass(frozen=True)
class LoraNetwork:
    """One LoRA file, parsed: its layers by (part, name), its metadata, and where it came from."""

    name: str
    layers: dict[tuple[str, str], LayerPatch] = field(repr=False)
    metadata: dict[str, str] = field(default_factory=dict, repr=False)
    source: str = ""  # path plus size and mtime: changes when the file does
    ignored: tuple[str, ...] = ()  # keys read but not applied (bias deltas, unknown extras)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted({layer.kind for layer in self.layers.values()}))

    @property
    def network_type(self) -> str:
        """LoRA, LoCon (LoRA that also patches 3×3 convolutions), LoHa, LoKr, full, or a mix."""
        kinds = self.kinds
        if kinds == (LORA,):
            convolutions = any(
                layer.factors["down"].dim() == 4
                and layer.factors["down"].shape[-1] > 1
                or "mid" in layer.factors
                for layer in self.layers.values()
            )
            return "LoCon" if convolutions else LORA
        return "+".join(kinds) if kinds else "empty"

    @property
    def rank(self) -> int | None:
        """The most common rank of its layers (files can mix ranks: conv and linear dims differ)."""
        ranks = [layer.rank for layer in self.layers.values() if layer.rank]
        return max(set(ranks), key=ranks.count) if ranks else None

    @property
    def alpha(self) -> float | None:
        alphas = [layer.alpha for layer in self.layers.values() if layer.alpha is not None]
        return max(set(alphas), key=alphas.count) if alphas else None

    def parts(self) -> set[str]:
        return {part for part, _ in self.layers}

    def count(self, part: str) -> int:
        return sum(1 for layer_part, _ in self.layers if layer_part == part)


def build_layer(
    part: str, name: str, kind: str, values: dict[str, torch.Tensor], file_name: str
) -> LayerPatch:
    """One layer's factors, checked: every factor its kind needs is there and the shapes compose."""
    values = dict(values)
    alpha = _scalar(values.pop("alpha", None), file_name)
    scale = _scalar(values.pop("scale", None), file_name)
    if kind == LOKR:
        missing = [w for w in ("w1", "w2") if w not in values and not {f"{w}a", f"{w}b"} <= values.keys()]
    else:
        missing = [factor for factor in _REQUIRED[kind] if factor not in values]
    if missing:
        raise LoraError(
            f"{file_name} is incomplete: its {kind} layer {name} ({PART_LABELS.get(part, part)}) has no "
            f"{', '.join(missing)} factor; the file is damaged or was not written by a LoRA trainer"
        )
    layer = LayerPatch(part, name, kind, values, alpha, scale)
    try:  # compose the factors on the meta device: shapes are checked, nothing is computed
        layer.delta(layer.delta_shape(), device="meta")
        composes = True
    except (IndexError, KeyError, RuntimeError, ValueError):
        composes = False
    if not composes:
        raise LoraError(f"{file_name} is damaged: the factors of layer {name} have impossible shapes")
    return layer


def _scalar(tensor: torch.Tensor | None, file_name: str) -> float | None:
    if tensor is None:
        return None
    if tensor.numel() != 1:
        raise LoraError(f"{file_name} is damaged: one of its alpha or scale values is not a single number")
    return float(tensor.float().item())
