"""LoRA, LoCon, LoHa and LoKr files: read them, check them against the loaded model, merge them in and out.

    stack = LoraStack(ModelParts.from_pipe(model.pipe), model_family=model.family)
    report = stack.apply([(stack.load(path), 0.8), (stack.load(other), 1.0, 0.5)])
    if report.text_encoders_changed: ...drop cached prompt encodings...
    stack.clear()  # the original weights, bit for bit

No Qt here; see ``stack`` for the design, ``files`` for the formats, ``fit`` for the checks,
``library`` for the folder scan and ``hashing`` for A1111's short hashes.
"""

from ldm_studio.engine.lora.errors import LoraError
from ldm_studio.engine.lora.files import LoraFileCache, lora_from_tensors, read_lora
from ldm_studio.engine.lora.fit import LoraFit, fit_lora, lora_family
from ldm_studio.engine.lora.hashing import HashCache
from ldm_studio.engine.lora.library import LoraInfo, lora_info, lora_sha256, scan_loras
from ldm_studio.engine.lora.naming import ModelParts, ModuleIndex
from ldm_studio.engine.lora.network import LayerPatch, LoraNetwork
from ldm_studio.engine.lora.stack import ApplyReport, LoraStack, LoraUse

__all__ = [
    "ApplyReport",
    "HashCache",
    "LayerPatch",
    "LoraError",
    "LoraFileCache",
    "LoraFit",
    "LoraInfo",
    "LoraNetwork",
    "LoraStack",
    "LoraUse",
    "ModelParts",
    "ModuleIndex",
    "fit_lora",
    "lora_family",
    "lora_from_tensors",
    "lora_info",
    "lora_sha256",
    "read_lora",
    "scan_loras",
]
