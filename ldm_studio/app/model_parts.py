"""Which separate parts an SD 3 / FLUX single file needs, and where each comes from now: the rows of
the parts picker in Model settings (no Qt, so it is tested without widgets)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldm_studio.engine.checkpoints.flow_parts import find_parts, label, normalise_parts, part_table
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.flow_files import describe_flow_file

SUFFIXES = (".safetensors", ".sft")
ORIGINS = {"inside": "inside the file", "chosen": "chosen", "beside the model": "beside the model"}


@dataclass(frozen=True)
class PartRow:
    part: str  # "clip_l", "clip_g", "t5xxl", "vae"
    label: str  # "the CLIP-L text encoder (clip_l.safetensors)"
    status: str  # "inside the file", "beside the model: ae.safetensors", "chosen: …", "missing"
    missing: bool
    inside: bool  # held by the model file itself: nothing to choose

    @property
    def title(self) -> str:
        """The row's name in a form: "CLIP-L text encoder"."""
        name = self.label.removeprefix("the ").partition(" (")[0]
        return name[:1].upper() + name[1:]

    @property
    def file_name(self) -> str:
        """The name the part is looked for under: "clip_l.safetensors" ("" when the label has none)."""
        return self.label.partition(" (")[2].removesuffix(")")


def flow_family(model: Path) -> str | None:
    """ "flux" or "sd3" for a single file whose parts can be chosen, else None."""
    flow = _flow(model)
    return None if flow is None else flow[1].family


def is_flow_model(model: Path) -> bool:
    """An SD 3 / FLUX single file or diffusers folder: one whose load checks the memory first."""
    import json

    if flow_family(model):
        return True
    try:
        index = json.loads((Path(model) / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(index, dict) and str(index.get("_class_name", "")).startswith(
        ("Flux", "StableDiffusion3")
    )


def _flow(model: Path):
    from ldm_studio.engine.checkpoints.tensors import read_safetensors_header

    if not model.is_file() or model.suffix.lower() not in SUFFIXES:
        return None
    try:
        table = read_safetensors_header(model)
    except (OSError, ValueError, ModelLoadError):
        return None
    flow = describe_flow_file(table.shapes)
    if flow is None or flow.layout == "diffusers":
        return None
    return table, flow


def part_rows(model: Path, chosen: dict[str, Any] | None = None) -> list[PartRow]:
    """One row per part the file needs besides its transformer; [] when it is no flow single file."""
    found = _flow(model)
    if found is None:
        return []
    table, flow = found
    needed = [part for part in (*flow.parts, *flow.missing) if part != "transformer"]
    chosen_paths = {k: v for k, v in normalise_parts(chosen).items() if k in needed}
    sources = find_parts(model, table, chosen_paths, flow.family)
    rows = []
    for part in needed:
        source = sources.get(part)
        if source is None:
            status = "missing"
        elif source.origin == "inside":
            status = ORIGINS["inside"]
        else:
            status = f"{ORIGINS.get(source.origin, source.origin)}: {source.file.name}"
        inside = source is not None and source.origin == "inside"
        rows.append(PartRow(part, label(part, flow.family), status, source is None, inside))
    return rows


def part_problem(part: str, path: Path, family: str = "flux") -> str:
    """ "" when ``path`` can be this part, else the engine's sentence for why not."""
    from ldm_studio.engine.checkpoints.flow_parts import KIND_MARKERS, PartSource

    source = PartSource(Path(path).expanduser(), "", "chosen")
    try:
        shapes = part_table(source, part)
    except (OSError, ValueError, ModelLoadError) as error:
        return str(error)
    markers = KIND_MARKERS.get(part, ())
    if markers and not any(marker in shapes for marker in markers):
        return f"{source.file.name} is not {label(part, family)}"
    return ""
