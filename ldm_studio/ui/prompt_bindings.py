"""Binds the prompt panel's LoRA picker and token counters to the session's library and counter.

State in (the library's entries, the loaded model's family, the counts), intents out (add a folder,
rescan, count this text). The window calls ``bind_prompt_tools`` once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ldm_studio.app.upscaler_names import upscaler_names

if TYPE_CHECKING:
    from ldm_studio.app.session import Session
    from ldm_studio.ui.prompt_panel import PromptPanel


def bind_prompt_tools(panel: PromptPanel, session: Session, *, scan: bool = True) -> None:
    extras, networks, tokens = panel.extras, session.networks, session.tokens
    networks.entriesChanged.connect(extras.set_networks)
    networks.scanningChanged.connect(extras.set_scanning)
    extras.addFolderRequested.connect(networks.add_folder)
    extras.refreshRequested.connect(lambda: networks.refresh())
    tokens.counted.connect(extras.show_counts)
    session.modelChanged.connect(lambda summary: extras.set_model_family(summary.family if summary else ""))
    panel.edited.connect(
        lambda draft: tokens.request(draft.request.prompt, draft.request.negative_prompt, draft.request.steps)
    )
    hires = panel.hires_panel  # hires fix's upscaler menu: the library's upscaler files, by name
    hires.upscalersWanted.connect(lambda: hires.set_upscalers(upscaler_names()))
    hires.set_upscalers(upscaler_names())
    extras.set_networks(networks.entries)
    if session.model is not None:
        extras.set_model_family(session.model.family)
    if scan:
        networks.refresh()
