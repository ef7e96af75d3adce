"""Settings that persist between runs, as a JSON file in the user's config folder. No Qt needed."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"


@dataclass
class Settings:
    last_request: dict[str, Any] = field(default_factory=dict)
    random_seed: bool = True
    window_geometry: str = ""  # base64 of QWidget.saveGeometry()
    window_state: str = ""
    splitter_state: str = ""
    last_model: str = ""
    device: str = "auto"
    dtype: str = "auto"
    preview_mode: str = "auto"  # Full / Tiny decoder / Fast by the model's measured cost (app.preview_auto)
    preview_every: int = 5
    autosave: bool = True
    gallery_folder: str = ""
    tiny_decoders: dict[str, str] = field(default_factory=dict)  # family -> tiny decoder (app.preview_auto)
    preview_costs: dict[str, dict] = field(default_factory=dict)  # model|device|dtype -> measured seconds
    draft_decode: bool = False  # the saved image through the family's tiny decoder (app.preview_auto)
    tiled_vae: str = "auto"  # Tiled VAE: auto / always / never (engine.vae_tiling)
    # model path -> the sampling settings the user kept instead of its few-step preset (app.few_step)
    own_sampling: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, config_dir: Path) -> Settings:
        path = config_dir / SETTINGS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as error:
            log.warning("ignoring unreadable settings file %s: %s", path, error)
            return cls()
        known = {f.name for f in dataclasses.fields(cls)}
        defaults = cls()
        values = {}
        for key, value in data.items():
            # a hand-edited or older file must not crash start-up: keep only well-typed known keys
            if key in known and isinstance(value, type(getattr(defaults, key))):
                values[key] = value
        return cls(**values)

    def save(self, config_dir: Path) -> None:
        """Atomic write, so a crash mid-save never leaves a truncated settings file."""
        config_dir.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=config_dir, prefix=".settings-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(dataclasses.asdict(self), file, indent=2)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, config_dir / SETTINGS_FILE)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
