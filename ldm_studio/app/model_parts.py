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
    from ldm_studio.engine.flow_models import folder_variant

    model = Path(model)
    return folder_variant(model) is not None if model.is_dir() else flow_family(model) is not None


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
        inside = source is not None and source.origin == "inside"
        if source is None:
            status = "missing"
        else:  # "chosen: clip_l.safetensors", "beside the model: ae.safetensors"
            status = "inside the file" if inside else f"{source.origin}: {source.file.name}"
        rows.append(PartRow(part, label(part, flow.family), status, source is None, inside))
    return rows


def part_problem(part: str, path: Path, family: str = "flux") -> str:
    """ "" when ``path`` can be this part, else the sentence for why not (the loader's kind check)."""
    from ldm_studio.engine.checkpoints.flow_parts import PartSource, is_kind

    source = PartSource(Path(path).expanduser(), "", "chosen")
    try:
        shapes = part_table(source, part)
    except (OSError, ValueError, ModelLoadError) as error:
        return str(error)
    return "" if is_kind(part, shapes) else f"{source.file.name} is not {label(part, family)}"
