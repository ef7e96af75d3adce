"""OpenMoji (npm ``openmoji``, CC-BY-SA 4.0) as a captioned image folder: the emoji LoRA's demo data.

The package ships SVGs only; they are rendered with CairoSVG at the target size and composited on
white. Captions follow the bundled emoji model's style (see :mod:`emoji_data`): the lower-case name,
then the tags joined with ", ". Only base Unicode emoji are written (no skin tones, flags,
components or OpenMoji's own extras), and ``holdout.txt`` lists ~10 % of them for the bench.
"""

from __future__ import annotations

import csv
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ldm_studio.training.emoji_data import is_held_out, read_text_member, spoken, unique, write_folder_index

OPENMOJI_PACKAGE = "openmoji"
OPENMOJI_VERSION = "17.0.0"
OPENMOJI_LICENCE = "CC-BY-SA-4.0"
EXCLUDED_GROUPS = {"component", "flags", "extras-openmoji", "extras-unicode"}
ATTRIBUTION = (
    "OpenMoji graphics by the OpenMoji project (https://openmoji.org), licensed under CC BY-SA 4.0 "
    "(https://creativecommons.org/licenses/by-sa/4.0/). Anything trained on them (e.g. a LoRA) is a "
    "derivative that carries the same licence."
)


class SvgRendererMissingError(RuntimeError):
    """CairoSVG is needed to turn OpenMoji's SVGs into pictures."""


@dataclass(frozen=True)
class OpenMojiEntry:
    hexcode: str
    captions: tuple[str, ...]


def list_openmoji(table: str) -> list[OpenMojiEntry]:
    """Base emoji from ``data/openmoji.csv`` with name and tag captions."""
    entries = []
    for row in csv.DictReader(io.StringIO(table)):
        if row["group"] in EXCLUDED_GROUPS or row.get("skintone"):
            continue
        tags = [spoken(tag) for tag in row.get("tags", "").split(",") if tag.strip()]
        captions = unique([spoken(row["annotation"]), ", ".join(unique(tags)) if tags else ""])
        entries.append(OpenMojiEntry(row["hexcode"].upper(), captions))
    return entries


def render_svg(svg: bytes, size: int) -> Image.Image:
    try:
        import cairosvg
    except (ImportError, OSError) as error:  # OSError: the cairo library itself is missing
        raise SvgRendererMissingError(
            "rendering OpenMoji needs CairoSVG: pip install cairosvg (and the cairo library)"
        ) from error
    png = cairosvg.svg2png(bytestring=svg, output_width=size, output_height=size)
    with Image.open(io.BytesIO(png)) as image:
        rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def write_openmoji_folder(
    tarball: Path, out_dir: Path, *, size: int = 32, holdout_fraction: float = 0.1
) -> int:
    """Write ``openmoji/<hexcode>.png``, ``metadata.jsonl``, ``holdout.txt``, ``ATTRIBUTION.md``."""
    entries = {
        entry.hexcode: entry
        for entry in list_openmoji(read_text_member(tarball, "package/data/openmoji.csv"))
    }
    (out_dir / "openmoji").mkdir(parents=True, exist_ok=True)
    records, held_out = [], []
    with tarfile.open(tarball) as archive:
        for member in archive:
            if not (member.name.startswith("package/color/svg/") and member.name.endswith(".svg")):
                continue
            entry = entries.get(Path(member.name).stem.upper())
            handle = archive.extractfile(member) if entry is not None else None
            if entry is None or handle is None:
                continue
            file_name = f"openmoji/{entry.hexcode.lower()}.png"
            render_svg(handle.read(), size).save(out_dir / file_name, optimize=True)
            records.append(
                {
                    "file_name": file_name,
                    "text": list(entry.captions),
                    "style": "openmoji",
                    "licence": OPENMOJI_LICENCE,
                }
            )
            if is_held_out(entry.hexcode.lower(), holdout_fraction):
                held_out.append(file_name)
    write_folder_index(out_dir, records, held_out)
    (out_dir / "ATTRIBUTION.md").write_text(
        f"# OpenMoji images and captions\n\n- `openmoji/`: {ATTRIBUTION} From npm `{OPENMOJI_PACKAGE}` "
        f"({tarball.name}).\n- Captions: OpenMoji's annotations and tags (data/openmoji.csv), same licence.\n"
        f"- SVGs were rendered at {size}x{size} with CairoSVG and composited on white; no other changes.\n",
        encoding="utf-8",
    )
    return len(records)
