"""The record of a finished generation: what goes into ``Finished.metadata`` beside the request.

The PNG writer (gallery) turns it into our JSON and A1111's ``parameters``; a new capability that
must be reproducible (LoRA weights, hires-fix settings) adds its entries here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ldm_studio import __version__
from ldm_studio.engine.flow_models import flow_record
from ldm_studio.engine.images import file_sha256
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.precision import precision_label
from ldm_studio.engine.request import GenerationRequest

if TYPE_CHECKING:
    from ldm_studio.engine.generation.start import Branch


def source_record(request: GenerationRequest) -> dict[str, Any]:
    """Where an image-to-image result came from, for its metadata."""
    record: dict[str, Any] = {}
    for key in ("init_image", "mask"):
        path = getattr(request, key)
        if path:
            record[f"{key}_path"] = str(path)
            try:
                record[f"{key}_sha256"] = file_sha256(path)
            except OSError:
                pass
    if request.init_image:
        record["strength"] = request.strength
    if request.outpaint is not None:  # A1111 has no key for it; the request in our JSON holds the value
        record["outpaint"] = request.outpaint.text()
    return record


def generation_record(
    model: LoadedModel,
    request: GenerationRequest,
    branch: Branch | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Model, device, app version, the source image, the caller's ``extra``, the branch point."""
    record = {
        "model_name": model.name,
        "model_hash": model.model_hash,
        "family": model.family,
        "device": model.placement.label,
        "precision": precision_label(model.placement.device, model.placement.dtype, model.dtype_choice),
        "app_version": __version__,
        **source_record(request),
        **flow_record(model, request.guidance),  # SD 3 / FLUX: Distilled CFG Scale, Shift
        **(extra or {}),
    }
    if branch is not None:
        record.update(parent_seed=branch.parent.seed, branch_step=branch.from_step)
    return record
