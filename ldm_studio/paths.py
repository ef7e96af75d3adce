"""Where things live: shipped resources, and the user's config, data, cache and log folders.

Nothing is ever written next to the code. Every user folder can be redirected with the
``LDM_STUDIO_HOME`` environment variable (tests and portable installs use it). Small JSON files in
those folders are written atomically (``write_json_atomically``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldm_studio import APP_AUTHOR, APP_NAME


def resources_dir() -> Path:
    """The shipped ``resources/`` folder, in a source checkout or inside an installed wheel."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / "_resources", package_dir.parent / "resources"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"LDM Studio's resources folder is missing (looked beside {package_dir})")


def resource(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)


@dataclass(frozen=True)
class UserDirs:
    config: Path
    data: Path
    cache: Path
    logs: Path
    pictures: Path

    @property
    def models(self) -> Path:
        return self.data / "models"

    @property
    def gallery_index(self) -> Path:
        return self.data / "gallery.sqlite3"

    @property
    def default_gallery(self) -> Path:
        return self.pictures / APP_NAME

    def ensure(self) -> UserDirs:
        for folder in (self.config, self.data, self.cache, self.logs, self.models):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def user_dirs() -> UserDirs:
    home = os.environ.get("LDM_STUDIO_HOME")
    if home:
        root = Path(home)
        return UserDirs(root / "config", root / "data", root / "cache", root / "logs", root / "pictures")
    import platformdirs

    return UserDirs(
        config=Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR)),
        data=Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR)),
        cache=Path(platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR)),
        logs=Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR)),
        pictures=Path(platformdirs.user_pictures_dir()),
    )


def write_json_atomically(file: Path, data: Any) -> None:
    """Write ``data`` as JSON so that a crash leaves either the old file or the new one, never half."""
    file.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=1, sort_keys=True)
        os.replace(temporary, file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
