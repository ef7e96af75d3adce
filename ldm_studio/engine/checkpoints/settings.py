"""Per-model choices the user made (prediction type, a separate VAE...), remembered per file.

One small JSON file in the user's config folder, keyed by the model's absolute path. Written
atomically so a crash never leaves half a file; an unreadable file counts as empty.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ldm_studio.paths import user_dirs, write_json_atomically

log = logging.getLogger(__name__)

SETTINGS_FILE = "model_settings.json"
PREDICTION_TYPES = ("epsilon", "v_prediction")
CLIP_SKIP_RANGE = (1, 12)  # A1111's numbering (engine.request.MAX_CLIP_SKIP)


def settings_path() -> Path:
    return user_dirs().config / SETTINGS_FILE


def _key(path: Path) -> str:
    return str(Path(path).expanduser().resolve())


def _read_all(file: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        log.warning("ignoring unreadable model settings %s: %s", file, error)
        return {}
    return (
        {key: value for key, value in data.items() if isinstance(value, dict)}
        if isinstance(data, dict)
        else {}
    )


def get_model_settings(path: Path) -> dict[str, Any]:
    """What the user chose for this model file or folder; empty when nothing was chosen."""
    return dict(_read_all(settings_path()).get(_key(path), {}))


def set_model_settings(path: Path, **values: Any) -> dict[str, Any]:
    """Remember choices for this model; a value of None forgets that choice. Returns the result.

    ``prediction_type`` must be "epsilon" or "v_prediction"; ``vae_path`` is stored as an absolute
    path; ``clip_skip`` (the prompt panel's default for this model) is 1..12 in A1111's numbering;
    ``parts`` (a FLUX.1 single file's separate files: clip_l, t5xxl, ae, tokenizers) maps each part
    name to a path, stored absolute, replacing the parts chosen before.
    Other keys are stored as given (they must be JSON values).
    """
    prediction = values.get("prediction_type")
    if prediction is not None and prediction not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction!r}")
    clip_skip = values.get("clip_skip")
    if clip_skip is not None and (
        not isinstance(clip_skip, int) or not CLIP_SKIP_RANGE[0] <= clip_skip <= CLIP_SKIP_RANGE[1]
    ):
        raise ValueError(f"clip_skip must be a whole number from 1 to 12, got {clip_skip!r}")
    if values.get("vae_path") is not None:
        values["vae_path"] = _key(Path(values["vae_path"]))
    if values.get("parts") is not None:
        values["parts"] = _parts(values["parts"])
    file = settings_path()
    everything = _read_all(file)
    current = everything.get(_key(path), {})
    for name, value in values.items():
        if value is None:
            current.pop(name, None)
        else:
            current[name] = value
    if current:
        everything[_key(path)] = current
    else:
        everything.pop(_key(path), None)
    write_json_atomically(file, everything)
    return dict(current)


def _parts(parts: dict[str, Any]) -> dict[str, str]:
    """Part names checked (``ae`` means the VAE) and paths made absolute; ValueError with a sentence."""
    from ldm_studio.engine.checkpoints.flow_parts import part_name

    if not isinstance(parts, dict):
        raise ValueError(f"parts must map part names to paths, got {parts!r}")
    return {part_name(name): _key(Path(path)) for name, path in parts.items() if path}
