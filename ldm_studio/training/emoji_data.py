"""Build a captioned emoji image folder from the npm packages of iamcal's emoji-data and emojibase.

The packages are fetched with ``npm pack`` (a tarball, nothing installed) and read straight from the
tarball. The written folder is an ordinary captioned image folder (see :mod:`image_folder`), so the
training commands treat it like any user's pictures.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

# (npm package, folder name in the written dataset, licence of the graphics, attribution line)
EMOJI_STYLES = {
    "twemoji": (
        "emoji-datasource-twitter",
        "twitter",
        "CC-BY-4.0",
        "Twemoji graphics by Twitter, Inc. and other contributors, CC-BY 4.0 "
        "(https://creativecommons.org/licenses/by/4.0/)",
    ),
    "noto": (
        "emoji-datasource-google",
        "google",
        "Apache-2.0",
        "Noto Emoji graphics by Google LLC, Apache License 2.0 (https://www.apache.org/licenses/LICENSE-2.0)",
    ),
}
EMOJIBASE_PACKAGE = "emojibase-data"
PACKAGE_VERSIONS = {
    "emoji-datasource-twitter": "16.0.0",
    "emoji-datasource-google": "16.0.0",
    "emojibase-data": "17.0.0",
}
SKIN_TONE_NAMES = {
    "1F3FB": "light skin tone",
    "1F3FC": "medium-light skin tone",
    "1F3FD": "medium skin tone",
    "1F3FE": "medium-dark skin tone",
    "1F3FF": "dark skin tone",
}
EXCLUDED_CATEGORIES = {"Component"}


class NpmMissingError(RuntimeError):
    """npm is not installed, so the emoji packages cannot be fetched."""


@dataclass(frozen=True)
class EmojiImage:
    """One picture to write: where it is in the tarball, and what it shows."""

    style: str
    key: str  # the unified code points, lower case, e.g. "1f385-1f3fb"
    member: str  # path inside the tarball
    captions: tuple[str, ...]


def fetch_package(name: str, version: str, cache_dir: Path) -> Path:
    """The npm tarball of ``name@version`` in ``cache_dir``, running ``npm pack`` only when it is missing."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    tarball = cache_dir / f"{name}-{version}.tgz"
    if tarball.is_file():
        return tarball
    npm = shutil.which("npm")
    if npm is None:
        raise NpmMissingError(
            f"npm is needed to fetch {name}: install Node.js/npm, or put {tarball.name} in {cache_dir}"
        )
    subprocess.run(
        [npm, "pack", f"{name}@{version}", "--pack-destination", str(cache_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    if not tarball.is_file():
        raise FileNotFoundError(f"npm pack did not write {tarball}")
    return tarball


def read_json_member(tarball: Path, member: str) -> object:
    with tarfile.open(tarball) as archive:
        handle = archive.extractfile(member)
        if handle is None:
            raise FileNotFoundError(f"{member} is not a file in {tarball}")
        return json.load(handle)


def read_text_member(tarball: Path, member: str) -> str:
    with tarfile.open(tarball) as archive:
        handle = archive.extractfile(member)
        if handle is None:
            raise FileNotFoundError(f"{member} is not a file in {tarball}")
        return handle.read().decode("utf-8")


def spoken(text: str) -> str:
    """A short name or label as words: "heart_eyes" -> "heart eyes"."""
    return " ".join(text.replace("_", " ").replace("-", " ").lower().split())


def unique(items: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return tuple(seen)


def emojibase_index(entries: list[dict]) -> dict[str, dict]:
    """emojibase entries (and their skin variants) by upper-case hexcode without variation selectors.

    emoji-datasource writes the fully qualified form ("2764-FE0F", red heart) where emojibase often
    drops the selector ("2764"), so both sides are looked up without it.
    """
    index: dict[str, dict] = {}
    for entry in entries:
        index[without_selectors(entry["hexcode"])] = entry
        for skin in entry.get("skins") or ():
            index[without_selectors(skin["hexcode"])] = skin
    return index


def without_selectors(hexcode: str) -> str:
    return "-".join(part for part in hexcode.upper().split("-") if part != "FE0F")


def captions_for(entry: dict, extra: dict | None, skin_tone: str | None) -> tuple[str, ...]:
    """Several captions for one emoji: its name, emojibase label, short names and tags."""
    base = [spoken(entry["name"])]
    if extra:
        base.append(spoken(extra.get("label", "")))
    base.extend(spoken(name) for name in entry.get("short_names", ()))
    tags = [spoken(tag) for tag in (extra or {}).get("tags", ())]
    if tags:
        base.append(", ".join(unique(tags)))
    captions = unique(base)
    if skin_tone:
        captions = unique(
            f"{caption}, {skin_tone}" if skin_tone not in caption else caption for caption in captions
        )
    return captions


def list_emoji(
    datasource: list[dict],
    emojibase: dict[str, dict],
    style: str,
    image_folder: str,
    include_skin_tones: bool,
    include_flags: bool,
) -> Iterator[EmojiImage]:
    has_image = f"has_img_{image_folder}"
    for entry in datasource:
        if entry["category"] in EXCLUDED_CATEGORIES or (entry["category"] == "Flags" and not include_flags):
            continue
        unified = entry["unified"].upper()
        if entry.get(has_image):
            yield EmojiImage(
                style,
                unified.lower(),
                f"package/img/{image_folder}/64/{entry['image']}",
                captions_for(entry, emojibase.get(without_selectors(unified)), None),
            )
        if not include_skin_tones:
            continue
        for tones, variant in (entry.get("skin_variations") or {}).items():
            if not variant.get(has_image):
                continue
            tone_names = [SKIN_TONE_NAMES[tone] for tone in tones.split("-") if tone in SKIN_TONE_NAMES]
            variant_unified = variant["unified"].upper()
            yield EmojiImage(
                style,
                variant_unified.lower(),
                f"package/img/{image_folder}/64/{variant['image']}",
                captions_for(
                    entry, emojibase.get(without_selectors(variant_unified)), " and ".join(unique(tone_names))
                ),
            )


def composite_on_white(png_bytes: bytes, size: int) -> Image.Image:
    with Image.open(io.BytesIO(png_bytes)) as image:
        rgba = image.convert("RGBA")
    if rgba.size != (size, size):
        rgba = rgba.resize((size, size), Image.Resampling.LANCZOS)
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def is_held_out(key: str, fraction: float) -> bool:
    """A stable split by emoji (both styles of one emoji fall on the same side)."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def write_folder_index(out_dir: Path, records: list[dict], held_out: list[str]) -> None:
    """``metadata.jsonl`` (sorted by file) and ``holdout.txt``: what ``read_captioned_folder`` reads."""
    records = sorted(records, key=lambda record: record["file_name"])
    with (out_dir / "metadata.jsonl").open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    (out_dir / "holdout.txt").write_text("".join(f"{name}\n" for name in sorted(held_out)), encoding="utf-8")


def write_emoji_folder(
    tarballs: dict[str, Path],
    out_dir: Path,
    *,
    size: int = 64,
    holdout_fraction: float = 0.05,
    include_skin_tones: bool = False,
    include_flags: bool = False,
) -> int:
    """Write ``<style>/<code>.png`` images, ``metadata.jsonl``, ``holdout.txt`` and ``ATTRIBUTION.md``.

    ``tarballs`` maps npm package names to their downloaded ``.tgz``. Returns the image count.
    """
    emojibase_entries = read_json_member(tarballs[EMOJIBASE_PACKAGE], "package/en/data.json")
    emojibase = emojibase_index(emojibase_entries)  # type: ignore[arg-type]
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    held_out: list[str] = []
    licence_notes: list[str] = []
    for style, (package, image_folder, licence, attribution) in EMOJI_STYLES.items():
        tarball = tarballs[package]
        datasource = read_json_member(tarball, "package/emoji.json")
        readme = read_text_member(tarball, "package/README.md")
        licence_notes.append(f"- `{style}/`: {attribution}. From npm `{package}` ({tarball.name}); ")
        licence_notes[-1] += "its README states: " + licence_line(readme, image_folder)
        (out_dir / style).mkdir(exist_ok=True)
        images = list_emoji(datasource, emojibase, style, image_folder, include_skin_tones, include_flags)  # type: ignore[arg-type]
        wanted = {image.member: image for image in images}
        with tarfile.open(tarball) as archive:
            for member in archive:
                image = wanted.get(member.name)
                if image is None:
                    continue
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                file_name = f"{style}/{image.key}.png"
                composite_on_white(handle.read(), size).save(out_dir / file_name, optimize=True)
                records.append(
                    {"file_name": file_name, "text": list(image.captions), "style": style, "licence": licence}
                )
                if is_held_out(image.key.split("-1f3f")[0], holdout_fraction):
                    held_out.append(file_name)
    write_folder_index(out_dir, records, held_out)
    (out_dir / "ATTRIBUTION.md").write_text(
        "# Emoji images and captions\n\n"
        + "\n".join(licence_notes)
        + f"\n- Captions: names and short names from emoji-datasource (MIT, Cal Henderson); labels and "
        f"tags from npm `{EMOJIBASE_PACKAGE}` (MIT, Miles Johnson).\n"
        "- Images were composited on white and resized; no other changes.\n",
        encoding="utf-8",
    )
    return len(records)


def licence_line(readme: str, image_folder: str) -> str:
    """The README sentence about the licence of this image set (quoted so the record shows its source)."""
    keyword = {"twitter": "Twitter images", "google": "Google/Noto images"}[image_folder]
    for line in readme.splitlines():
        if keyword in line:
            return f'"{line.strip("* ").strip()}"'
    return "(no licence line found; check the package)"
