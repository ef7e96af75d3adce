"""What a .gguf file is, from its tensor table alone: a FLUX.1 transformer (dev when it has
``guidance_in``), its quantisation ("Q4_0"), the parts it still needs (ae, clip_l, t5xxl) and the
memory it takes, the transformer counted at its real size because it stays quantised in memory.
Any other GGUF (an LLM, an SD 3 or SD 1.x quantisation) is named and refused with one sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ldm_studio.engine.catalog import human_size
from ldm_studio.engine.checkpoints.info import ModelInfo
from ldm_studio.engine.checkpoints.tensors import TensorTable

ONLY_FLUX = "LDM Studio loads GGUF files of FLUX.1 transformers only (such as flux1-dev-Q4_0.gguf)"


def _other_reason(path: Path, table: TensorTable, flow: Any) -> str:
    if flow is not None:
        return f"{path.name} is a {flow.variant} GGUF file; {ONLY_FLUX}"
    architecture = table.metadata.get("general.architecture") or "unknown"
    return (
        f"{path.name} is a GGUF file of the '{architecture}' architecture, not a FLUX.1 transformer; "
        + ONLY_FLUX
    )


def describe_gguf(
    path: Path, table: TensorTable, flow: Any, common: dict[str, Any], chosen: dict[str, Any] | None = None
) -> ModelInfo:
    """ModelInfo for a .gguf file; loadable when it is a FLUX.1 transformer with its parts found."""
    from ldm_studio.engine.checkpoints.flow_gguf import quantisation, unsupported_types

    if flow is None or flow.family != "flux":
        family = flow.family if flow is not None else "unknown"
        return ModelInfo(
            family=family, loadable=False, reason=_other_reason(path, table, flow),
            parameters={"transformer": table.numel()} if flow is not None else {}, **common,
        )  # fmt: skip
    kind = quantisation(table)
    size = human_size(common["file_size"])
    notes = [f"{flow.variant} transformer in {kind}, kept quantised in memory ({size})"]
    parameters = {"transformer": table.numel()}
    unsupported = unsupported_types(table)
    if unsupported:
        kinds = ", ".join(unsupported)
        reason = f"{path.name} holds tensors in the ggml type {kinds}, which LDM Studio cannot dequantise"
    else:
        from ldm_studio.engine.checkpoints.flow_single_file import part_parameters

        reason, sources = _parts(path, table, chosen)
        notes.extend(f"{part}: {source.file.name} ({source.origin})" for part, source in sources.items())
        parameters, unreadable = part_parameters(table, sources)
        reason = reason or unreadable
    return ModelInfo(
        family="flux",
        loadable=not reason,
        reason=reason,
        parameters=parameters,
        stored_bytes={"transformer": int(common["file_size"])},
        native_size=1024,
        notes=tuple(notes),
        **common,
    )


def _parts(path: Path, table: TensorTable, chosen: dict[str, Any] | None) -> tuple[str, dict]:
    from ldm_studio.engine.checkpoints.flow_single_file import parts_status

    sources, reason = parts_status(path, table, chosen, "flux")
    return reason, sources
