"""What LDM Studio ships and under which terms: for the About dialog, with no Qt import.

Two sources: ``resources/licenses/components.toml`` for what is not a Python library (Qt's notice,
the bundled model and its training data, tokenizer data), and the installed metadata of every
Python library LDM Studio runs on, whose own licence files are read from its ``.dist-info`` folder.
The stand-alone application copies that metadata in (see packaging/ldm-studio.spec).
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ldm_studio.paths import resources_dir

COMPONENTS_FILE = Path("licenses") / "components.toml"
APPLICATION_DISTRIBUTION = "ldm-studio"
LICENSE_FILE_NAME = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE)", re.IGNORECASE)


@dataclass(frozen=True)
class Component:
    """Something shipped that is not a Python library, with the texts that grant its use."""

    name: str
    role: str
    license: str
    notice: str
    files: tuple[Path, ...]

    def text(self) -> str:
        return "\n\n".join(
            f"==> {path.name} <==\n{path.read_text(encoding='utf-8', errors='replace')}"
            for path in self.files
        )


@dataclass(frozen=True)
class Library:
    """An installed Python distribution LDM Studio depends on (directly or not)."""

    name: str
    version: str
    license: str
    license_files: tuple[str, ...]  # paths relative to site-packages, as the metadata lists them

    def text(self) -> str:
        distribution = metadata.distribution(self.name)
        parts = []
        for name in self.license_files:
            content = distribution.read_text(name.split("/", 1)[1]) if ".dist-info/" in name else None
            if content is None:
                content = "(this file is listed in the library's metadata but was not installed)"
            parts.append(f"==> {name} <==\n{content}")
        if not parts:
            parts.append(
                f"{self.name} {self.version} carries no licence file; its metadata says: {self.license}"
            )
        return "\n\n".join(parts)


def shipped_components(root: Path | None = None) -> list[Component]:
    """The entries of components.toml that apply to this installation, with absolute file paths."""
    root = root or resources_dir()
    table = tomllib.loads((root / COMPONENTS_FILE).read_text(encoding="utf-8"))
    components = []
    for entry in table["component"]:
        only_with = entry.get("only_with")
        if only_with and not (root / only_with).exists():
            continue
        components.append(
            Component(
                name=entry["name"],
                role=entry["role"],
                license=entry["license"],
                notice=entry.get("notice", ""),
                files=tuple(root / name for name in entry["files"]),
            )
        )
    return components


def license_of(distribution: metadata.Distribution) -> str:
    """The licence as the metadata states it: the SPDX expression, else a short License field,
    else the trove classifiers."""
    fields = distribution.metadata
    expression = fields.get("License-Expression")
    if expression:
        return expression
    declared = (fields.get("License") or "").strip()
    if declared and "\n" not in declared and len(declared) <= 80:
        return declared
    classifiers = [
        value.split("::")[-1].strip()
        for value in fields.get_all("Classifier") or []
        if value.startswith("License ::")
    ]
    return ", ".join(classifiers) or "see the licence text"


def license_files(distribution: metadata.Distribution) -> tuple[str, ...]:
    files = distribution.files or []
    found = [
        str(path)
        for path in files
        if path.parts
        and path.parts[0].endswith(".dist-info")
        and (len(path.parts) > 2 and path.parts[1] == "licenses" or LICENSE_FILE_NAME.match(path.name))
    ]
    return tuple(sorted(found))


def _requirement_names(distribution: metadata.Distribution) -> list[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    names = []
    for line in distribution.requires or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        # a marker naming an extra belongs to an optional feature that was not asked for
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(requirement.name)
    return names


def python_libraries(root: str = APPLICATION_DISTRIBUTION) -> list[Library]:
    """Every installed distribution ``root`` needs, found by walking its requirements.

    Where ``root`` has no metadata (running from a bare source tree) every installed distribution
    is listed: more than LDM Studio needs, but nothing it needs is missing.
    """
    try:
        start = [metadata.distribution(root)]
    except metadata.PackageNotFoundError:
        start = list(metadata.distributions())
    seen: dict[str, metadata.Distribution] = {}
    pending = list(start)
    while pending:
        distribution = pending.pop()
        key = _normalise(distribution.metadata["Name"])
        if key in seen:
            continue
        seen[key] = distribution
        for name in _requirement_names(distribution):
            try:
                pending.append(metadata.distribution(name))
            except metadata.PackageNotFoundError:
                continue  # an optional dependency left uninstalled
    seen.pop(_normalise(root), None)
    return sorted(
        (
            Library(
                name=distribution.metadata["Name"],
                version=distribution.version,
                license=license_of(distribution),
                license_files=license_files(distribution),
            )
            for distribution in seen.values()
        ),
        key=lambda library: library.name.lower(),
    )


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
