"""LoRAs merged into the loaded model's weights, changed and removed without reloading the checkpoint.

For every layer some active LoRA touches, an exact copy of its original weight ``W0`` is kept (same
dtype; on the CPU by default, so a GPU does not hold two copies). The layer's weight is then
``W0 + Σ wᵢ·ΔWᵢ``, computed in float32 on the layer's device and cast once — always from ``W0``, so
changing weights back and forth never accumulates rounding. When no LoRA touches a layer any more,
``W0`` is copied back byte for byte: generating without LoRAs afterwards gives the same pixels as
never having used one.

Only layers whose list of (LoRA, weight) changed are recomputed, so moving one LoRA's slider rewrites
that LoRA's layers and nothing else. A merge costs nothing per denoising step, unlike wrapper layers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ldm_studio.engine.lora.errors import LoraError
from ldm_studio.engine.lora.files import LoraFileCache
from ldm_studio.engine.lora.fit import LoraFit, fit_lora
from ldm_studio.engine.lora.naming import DENOISERS, ModelParts, ModuleIndex, Target
from ldm_studio.engine.lora.network import LayerPatch, LoraNetwork

LayerKey = tuple[str, str]  # (part, module path)


@dataclass(frozen=True)
class LoraUse:
    """One LoRA at its weights: A1111's ``<lora:name:te>`` / ``<lora:name:te:unet>``."""

    network: LoraNetwork
    text_encoder_weight: float = 1.0
    unet_weight: float | None = None  # None: the same as the text encoder's

    @property
    def unet(self) -> float:
        return self.text_encoder_weight if self.unet_weight is None else self.unet_weight

    def weight_for(self, part: str) -> float:
        return self.unet if part in DENOISERS else self.text_encoder_weight


UseLike = LoraUse | tuple


def as_use(item: UseLike) -> LoraUse:
    """A LoraUse from ``LoraUse``, ``(network, weight)`` or ``(network, te_weight, unet_weight)``."""
    if isinstance(item, LoraUse):
        return item
    if isinstance(item, tuple) and len(item) in (2, 3) and isinstance(item[0], LoraNetwork):
        return LoraUse(
            item[0], float(item[1]), float(item[2]) if len(item) == 3 and item[2] is not None else None
        )
    raise TypeError(f"expected a LoraUse or (LoraNetwork, weight[, unet_weight]), got {item!r}")


@dataclass(frozen=True)
class ApplyReport:
    """What one ``apply`` changed: the caller drops cached text encodings when a text encoder changed."""

    layers_written: int
    changed_parts: frozenset[str]
    notices: tuple[str, ...] = ()

    @property
    def text_encoders_changed(self) -> bool:
        return any(part not in DENOISERS for part in self.changed_parts)


def _network_key(network: LoraNetwork) -> str:
    return network.source or f"memory:{id(network)}"


class LoraStack:
    """The LoRAs applied to one loaded model, and the original weights of the layers they patch."""

    def __init__(
        self,
        parts: ModelParts,
        *,
        model_family: str = "",
        keep_originals_on: str | torch.device = "cpu",
        files: LoraFileCache | None = None,
    ) -> None:
        self.parts = parts
        self.model_family = model_family
        self.keep_originals_on = torch.device(keep_originals_on)
        self.files = files or LoraFileCache()
        self._index: ModuleIndex | None = None
        self._fits: dict[str, LoraFit] = {}
        self._originals: dict[LayerKey, torch.Tensor] = {}
        self._written: dict[LayerKey, tuple[tuple[str, float], ...]] = {}
        self._targets: dict[LayerKey, Target] = {}
        self._active: tuple[LoraUse, ...] = ()

    @property
    def active(self) -> tuple[LoraUse, ...]:
        return self._active

    @property
    def patched_layers(self) -> int:
        return len(self._originals)

    def load(self, path: Path | str) -> LoraNetwork:
        """Read (or take from the cache) a LoRA file and check it fits this model."""
        network = self.files.get(Path(path))
        self.fit(network)
        return network

    def fit(self, network: LoraNetwork) -> LoraFit:
        key = _network_key(network)
        fit = self._fits.get(key)
        if fit is None or fit.network is not network:
            if self._index is None:
                self._index = ModuleIndex.build(self.parts)
            fit = fit_lora(network, self._index, self.parts, model_family=self.model_family)
            self._fits[key] = fit
        return fit

    def apply(self, uses: Iterable[UseLike]) -> ApplyReport:
        """Make the model's weights those of exactly these LoRAs at these weights."""
        wanted = tuple(as_use(item) for item in uses)
        for use in wanted:
            for weight in (use.text_encoder_weight, use.unet):
                if not math.isfinite(weight):
                    raise LoraError(f"the weight of {use.network.name} is not a number ({weight})")
        fits = [self.fit(use.network) for use in wanted]  # every check before the first write
        plan: dict[LayerKey, list[tuple[str, float, LayerPatch]]] = {}
        notices = []
        for use, fit in zip(wanted, fits, strict=True):
            if fit.notice and (use.text_encoder_weight or use.unet):
                notices.append(fit.notice)
            for layer_key, target in fit.targets.items():
                weight = use.weight_for(target.part)
                if weight == 0.0:
                    continue  # weight 0 is the original weight exactly, not W0 + 0·ΔW
                key = (target.part, target.path)
                self._targets[key] = target
                plan.setdefault(key, []).append(
                    (_network_key(use.network), weight, fit.network.layers[layer_key])
                )
        changed: set[str] = set()
        written = 0
        for key in list(set(plan) | set(self._written)):
            contributions = plan.get(key, [])
            signature = tuple((name, weight) for name, weight, _ in contributions)
            if self._written.get(key, ()) == signature:
                continue
            self._write(key, contributions)
            changed.add(key[0])
            written += 1
        self._active = wanted
        return ApplyReport(written, frozenset(changed), tuple(notices))

    def clear(self) -> ApplyReport:
        """Every patched layer back to its original weight, bit for bit."""
        return self.apply(())

    def forget(self) -> None:
        """Drop the originals without writing them back (the model is being unloaded)."""
        self._originals.clear()
        self._written.clear()
        self._targets.clear()
        self._fits.clear()
        self._index = None
        self._active = ()

    @torch.no_grad()
    def _write(self, key: LayerKey, contributions: Sequence[tuple[str, float, LayerPatch]]) -> None:
        parameter = self._targets[key].module.weight
        if parameter.device.type == "meta":
            raise LoraError(
                "LoRAs cannot be applied while the model's weights are offloaded layer by layer; "
                "turn sequential offload off"
            )
        original = self._originals.get(key)
        if original is None:
            original = parameter.detach().to(self.keep_originals_on, copy=True)
            self._originals[key] = original
        if not contributions:
            parameter.copy_(original.to(parameter.device))
            del self._originals[key]
            self._written.pop(key, None)
            return
        if parameter.dtype == torch.float32:
            total = parameter  # accumulate in place: no second copy of the layer
            total.copy_(original)
        else:  # half precision: sum in float32, round once
            total = original.to(device=parameter.device, dtype=torch.float32, copy=True)
        for _, weight, layer in contributions:
            layer.add_to(total, weight)
        if total is not parameter:
            parameter.copy_(total)
        self._written[key] = tuple((name, weight) for name, weight, _ in contributions)
