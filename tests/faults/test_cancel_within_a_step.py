"""Cancel is noticed inside a model call, not only between steps: an SD 1.5 step on a CPU takes seconds."""

from __future__ import annotations

import threading

from ldm_studio.engine.events import Cancelled, Finished
from ldm_studio.engine.generate import generate, network_blocks
from ldm_studio.engine.request import GenerationRequest

REQUEST = GenerationRequest("a slow one", seed=1, steps=3, guidance=5)


def test_a_cancel_during_the_first_block_stops_that_same_unet_call(tiny_model):
    unet = tiny_model.pipe.unet
    stop = threading.Event()
    later_blocks: list[str] = []

    def press_cancel(_block, _inputs, _output) -> None:
        stop.set()  # as if the user pressed Cancel while the first block was running

    handles = [unet.down_blocks[0].register_forward_hook(press_cancel)]
    handles += [
        block.register_forward_hook(lambda *_: later_blocks.append("ran")) for block in unet.up_blocks
    ]
    try:
        result = generate(tiny_model, REQUEST, should_stop=stop.is_set)
    finally:
        for handle in handles:
            handle.remove()

    assert isinstance(result, Cancelled) and result.at_step == 0
    assert later_blocks == []  # the rest of that UNet call did not run


def test_the_cancel_checks_are_gone_after_a_generation(tiny_model):
    assert isinstance(generate(tiny_model, REQUEST), Finished)
    assert all(not block._forward_pre_hooks for block in network_blocks(tiny_model))
