"""How the prompt panel shows the loaded model's fit (``app.model_fit.ModelFit``): samplers it cannot
run greyed out with the reason, the guidance box labelled for what the model reads, the size step.

Widgets only: the facts come from the session's model summary; nothing here changes a value (the
session switches a greyed sampler to the model's default and says so).
"""

from __future__ import annotations

from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QSpinBox

from ldm_studio.app.model_fit import GUIDANCE_DISTILLED, GUIDANCE_NONE, ModelFit

CFG_TIP = "Classifier-free guidance: how strongly the image follows the prompt"
DISTILLED_TIP = (
    "{model} reads the guidance value as an input of the network (distilled guidance, written as "
    "Distilled CFG Scale): one pass per step, not classifier-free guidance; about 3.5 is usual"
)
NO_GUIDANCE_TIP = (
    "{model} takes no guidance: it was distilled to follow the prompt without it, so CFG stays 1 "
    "and the negative prompt has no effect"
)
FLOW_SAMPLER_TIP = "The flow-matching form of {sampler}, as {model} was trained to be sampled"
# The engine hands SD 3's and FLUX's prompts to the pipeline's own encode_prompt without a clip skip
# (engine.generation.flow_conditioning), so the box would change nothing there.
CLIP_SKIP_FLOW_TIP = (
    "Not for {model}: it reads its text encoders the way its pipeline defines (SD 3: the CLIP encoders' "
    "penultimate layer, with T5; FLUX: CLIP-L's pooled output and T5's last layer), so clip skip does "
    "not apply"
)
SIZE_TIP = "{model} needs width and height in multiples of {step}"


def show_samplers(box: QComboBox, fit: ModelFit) -> None:
    """Grey out the samplers the model cannot run, each with its reason as its tooltip."""
    model = box.model()
    assert isinstance(model, QStandardItemModel)
    for row in range(box.count()):
        item = model.item(row)
        why = fit.sampler_reason(item.text())
        item.setEnabled(not why)
        if why:
            item.setToolTip(f"Not for {fit.family_label}: {why}")
        elif fit.flow:
            item.setToolTip(FLOW_SAMPLER_TIP.format(sampler=item.text(), model=fit.family_label))
        else:
            item.setToolTip("")


def show_guidance(label: QLabel, box: QDoubleSpinBox, fit: ModelFit) -> None:
    """'CFG', 'Guidance (distilled)' for FLUX dev, or CFG disabled with the reason for FLUX schnell."""
    model = fit.family_label
    if fit.guidance_kind == GUIDANCE_DISTILLED:
        text, tip = "Guidance (distilled)", DISTILLED_TIP.format(model=model)
    elif fit.guidance_kind == GUIDANCE_NONE:
        text, tip = "CFG", NO_GUIDANCE_TIP.format(model=model)
    else:
        text, tip = "CFG", CFG_TIP
    label.setText(text)
    for widget in (label, box):
        widget.setToolTip(tip)
        widget.setEnabled(fit.guidance_kind != GUIDANCE_NONE)


def size_tip(fit: ModelFit) -> str:
    return SIZE_TIP.format(model=fit.family_label, step=fit.size_step) if fit.flow else ""


def show_clip_skip(box: QSpinBox, fit: ModelFit, sd_tip: str) -> None:
    """Clip skip disabled with the reason for SD 3 / FLUX; ``sd_tip`` back for SD models."""
    box.setEnabled(not fit.flow)
    box.setToolTip(CLIP_SKIP_FLOW_TIP.format(model=fit.family_label) if fit.flow else sd_tip)
