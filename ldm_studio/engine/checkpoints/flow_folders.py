"""What an SD 3 / FLUX diffusers folder holds, as a ``ModelInfo`` (here, inside the checkpoints
package, so that engine.flow_models never imports the package that imports it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ldm_studio.engine.checkpoints.info import ModelInfo
from ldm_studio.engine.flow_models import _read_config, folder_variant


def inspect_flow_folder(folder: Path, count_parameters: Any, weight_dtype: Any) -> Any:
    """``ModelInfo`` of an SD 3 / FLUX diffusers folder (the checkpoints package's counters passed in)."""
    folder = Path(folder)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    variant = folder_variant(folder)
    components = [name for name, spec in index.items() if not name.startswith("_") and isinstance(spec, list)]
    problems = [
        f"model_index.json lists {name} but the folder has no {name}/ folder"
        for name in components
        if index[name] and index[name][0] is not None and not (folder / name).is_dir()
    ]
    if variant is None:
        problems.append("its transformer/config.json is neither an SD 3 nor a FLUX transformer")
    tokenizer_t5 = "tokenizer_3" if variant is not None and variant.family == "sd3" else "tokenizer_2"
    t5_listed = (index.get(tokenizer_t5.replace("tokenizer", "text_encoder")) or [None])[0] is not None
    # SD 3 runs without T5 (zeros in its place, as diffusers does); FLUX needs it
    if t5_listed and not any((folder / tokenizer_t5).glob("*")):
        problems.append(
            f"it has no T5 tokenizer ({tokenizer_t5}/ with spiece.model or tokenizer.json): copy that "
            "folder from the model's diffusers release"
        )
    parameters = {name: count_parameters(folder / name) for name in components if (folder / name).is_dir()}
    files = [p for p in folder.rglob("*") if p.is_file()]
    vae = _read_config(folder / "vae" / "config.json")
    factor = 2 ** (len(vae.get("block_out_channels", [0] * 4)) - 1)
    transformer = _read_config(folder / "transformer" / "config.json")
    native = int(transformer.get("sample_size", 128) or 128) * factor
    return ModelInfo(
        path=folder,
        file_type="diffusers",
        family=variant.family if variant else "unknown",
        loadable=not problems,
        reason="; ".join(problems),
        file_size=sum(p.stat().st_size for p in files),
        prediction_type="flow",
        prediction_source="flow matching (transformer config)",
        parameters={name: count for name, count in parameters.items() if count},
        weight_dtype=weight_dtype(folder / "transformer"),
        native_size=native,
        notes=(variant.variant,) if variant else (),
    )
