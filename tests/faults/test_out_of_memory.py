"""A request that cannot fit: a clear message with a hint, the memory given back, the next one works."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel

from ldm_studio.engine.events import Failed, Finished
from ldm_studio.engine.generate import generate
from ldm_studio.engine.request import GenerationRequest
from tests.faults.helpers import assert_logged_with_traceback, assert_one_readable_sentence

REQUEST = GenerationRequest("a red apple", seed=3, steps=3, guidance=5)


def framework_oom() -> None:
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def cpu_allocator_failure() -> None:
    torch.empty(1 << 50)  # 4 PiB: the CPU allocator really fails (a RuntimeError, not OutOfMemoryError)


@dataclass
class Exhaustion:
    """Makes every UNet call grab a big buffer (as activations would), then run out of memory."""

    monkeypatch: pytest.MonkeyPatch
    fail: object
    buffers: list[weakref.ref] = field(default_factory=list)

    def start(self) -> None:
        # On the class: the worker thread's own copy of the model is reached as well.
        buffers, fail = self.buffers, self.fail

        def forward(self, *args, **kwargs):
            scratch = torch.ones(32, 1024, 1024)  # 128 MB taken before the allocation that fails
            buffers.append(weakref.ref(scratch))
            fail()

        self.monkeypatch.setattr(UNet2DConditionModel, "forward", forward)

    def stop(self) -> None:
        self.monkeypatch.undo()


@pytest.fixture(params=[framework_oom, cpu_allocator_failure], ids=["OutOfMemoryError", "CPU allocator"])
def exhaustion(request, monkeypatch):
    return Exhaustion(monkeypatch, request.param)


def assert_out_of_memory_message(message: str) -> None:
    assert message.startswith("Out of memory")
    assert "smaller size" in message and "tiling" in message and "fp16" in message
    assert_one_readable_sentence(message.replace(". ", ", "))  # the fact, then the hint


def test_out_of_memory_gives_a_hint_frees_memory_and_the_next_generation_works(tiny_model, exhaustion):
    expected = generate(tiny_model, REQUEST)
    assert isinstance(tiny_model.pipe.unet, UNet2DConditionModel)
    exhaustion.start()

    result = generate(tiny_model, REQUEST)

    assert isinstance(result, Failed)
    assert_out_of_memory_message(result.message)
    assert exhaustion.buffers, "the UNet was never called"
    assert all(ref() is None for ref in exhaustion.buffers), "the half-allocated buffer is still held"
    exhaustion.stop()
    again = generate(tiny_model, REQUEST)
    assert isinstance(again, Finished)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(expected.images[0]))


def test_out_of_memory_reaches_the_window_and_the_log(qtbot, make_window, log_file, monkeypatch):
    window = make_window()
    exhaustion = Exhaustion(monkeypatch, cpu_allocator_failure)
    exhaustion.start()
    window.prompt_panel.set_request(REQUEST)
    with qtbot.waitSignal(window.session.worker.jobFailed, timeout=30_000) as failed:
        window.generate()

    message = failed.args[0]
    assert_out_of_memory_message(message)
    assert window.banner_text() == message
    assert_logged_with_traceback(log_file, message)
    assert window.prompt_panel.generate_button.isEnabled()

    exhaustion.stop()
    with qtbot.waitSignal(window.session.worker.jobFinished, timeout=30_000):
        window.generate()
    assert window.banner_text() == ""
    assert window.create_page.results.count() == 1
