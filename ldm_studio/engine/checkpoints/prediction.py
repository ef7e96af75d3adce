"""Guessing what the UNet predicts (noise or v) — the one thing a checkpoint's keys cannot tell.

SD 2.x 768-v and 512-epsilon models have identical tensors. In order of trust: the user's saved
choice, a marker tensor (``v_pred``), a sidecar ``.yaml`` beside the file, the file's own metadata,
the model folder's scheduler config, a hint in the file name, then the family's usual choice.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldm_studio.engine.checkpoints.settings import get_model_settings
from ldm_studio.engine.checkpoints.tensors import TensorTable

log = logging.getLogger(__name__)

# "vpred" in any family's file name (SDXL v-prediction fine-tunes use it); SD 2.x names also say
# 768 / -v for v-models and 512 / base for epsilon ones.
V_NAME_HINT = re.compile(r"(^|[^a-z0-9])v[-_ ]?pred(iction)?([^a-z0-9]|$)")
SD2_V_NAME_HINT = re.compile(r"(^|[^0-9])768([^0-9]|$)|[-_]v$")
SD2_EPSILON_NAME_HINT = re.compile(r"(^|[^a-z0-9])(eps(ilon)?|512|base)([^a-z0-9]|$)")
SAVED_SOURCE = "your setting for this model"


@dataclass(frozen=True)
class PredictionGuess:
    prediction_type: str  # "epsilon" or "v_prediction"
    source: str  # shown to the user next to the choice
    zero_terminal_snr: bool = False


def guess_prediction(
    path: Path, family: str, table: TensorTable | None, scheduler_config: dict[str, Any] | None = None
) -> PredictionGuess:
    zero_snr = bool(table is not None and "ztsnr" in table)
    if scheduler_config:
        zero_snr = zero_snr or bool(scheduler_config.get("rescale_betas_zero_snr"))
    saved = get_model_settings(path).get("prediction_type")
    if saved in ("epsilon", "v_prediction"):
        return PredictionGuess(saved, SAVED_SOURCE, zero_snr)
    if table is not None and "v_pred" in table:
        return PredictionGuess("v_prediction", "the checkpoint's v_pred marker", zero_snr)
    for sidecar in (path.with_suffix(".yaml"), path.with_suffix(".yml")):
        found = _from_sidecar(sidecar) if path.is_file() else None
        if found:
            return PredictionGuess(found, f"the config file {sidecar.name} beside it", zero_snr)
    if table is not None:
        found = _from_metadata(table.metadata)
        if found:
            return PredictionGuess(found, "the file's metadata", zero_snr)
    if scheduler_config and scheduler_config.get("prediction_type") in ("epsilon", "v_prediction"):
        return PredictionGuess(
            str(scheduler_config["prediction_type"]), "the model's scheduler config", zero_snr
        )
    name = path.name.lower() if path.is_dir() else path.stem.lower()
    if V_NAME_HINT.search(name) or (family == "sd2" and SD2_V_NAME_HINT.search(name)):
        return PredictionGuess("v_prediction", "a hint in the file name", zero_snr)
    if family == "sd2" and SD2_EPSILON_NAME_HINT.search(name):
        return PredictionGuess("epsilon", "a hint in the file name", zero_snr)
    if family == "sd2":
        # Most SD 2.x checkpoints in circulation are 768-v (2.0-v, 2.1 and their fine-tunes).
        return PredictionGuess(
            "v_prediction", "the SD 2.x default (768-v); switch to epsilon for 512 models", zero_snr
        )
    return PredictionGuess("epsilon", "the family default", zero_snr)


def _from_sidecar(file: Path) -> str | None:
    """The original LDM yaml says ``parameterization: "v"`` for v-models and nothing for epsilon."""
    if not file.is_file():
        return None
    try:
        import yaml

        with file.open(encoding="utf-8") as stream:
            config = yaml.safe_load(stream)
        params = config["model"]["params"]
    except Exception as error:  # a broken sidecar only loses the hint
        log.warning("ignoring unreadable config %s: %s", file, error)
        return None
    if not isinstance(params, dict):
        return None
    return "v_prediction" if str(params.get("parameterization", "eps")).lower() == "v" else "epsilon"


def _from_metadata(metadata: dict[str, str]) -> str | None:
    value = metadata.get("modelspec.prediction_type", "").lower()
    if value in ("v", "v_prediction", "v-prediction"):
        return "v_prediction"
    if value in ("epsilon", "eps"):
        return "epsilon"
    architecture = metadata.get("modelspec.architecture", "").lower()
    if architecture.endswith("-v") or "768-v" in architecture:
        return "v_prediction"
    if metadata.get("ss_v_parameterization", "").lower() == "true":
        return "v_prediction"
    return None
