"""The timeline's true-x0 decode: a worker job that only decodes the last step asked for, cached per
result, forgotten when the model changes; the session layer with the scripted backend."""

from __future__ import annotations

import threading

from ldm_studio.app.timeline_decode import StepDecodeSlot
from ldm_studio.app.worker import EngineWorker
from ldm_studio.engine.events import Finished
from ldm_studio.engine.request import GenerationRequest
from tests.app.fake_backend import ScriptedBackend
from tests.app.test_session import MODEL, finish, loaded, make_session, typed  # noqa: F401


def red_of(image) -> int:
    return image.pixelColor(0, 0).red()


def test_the_slot_keeps_only_the_last_wish():
    slot = StepDecodeSlot()
    assert slot.want("r", 3) is True  # a job is needed
    assert slot.want("r", 4) is False and slot.want("r", 9) is False  # the queued job will take it
    assert slot.take() == ("r", 9)
    assert slot.take() is None
    assert slot.want("r", 2) is True
    slot.drop()
    assert slot.take() is None


def test_scrubbing_fast_decodes_only_the_step_stopped_on(qtbot):
    gate = threading.Event()
    backend = ScriptedBackend(decode_gate=gate)
    worker = EngineWorker(lambda: backend)
    request = GenerationRequest("cat", seed=1, steps=20, width=8, height=8)
    finished = Finished([], request, {}, 0.0, trajectory=("steps", 20))
    decoded = []
    worker.stepDecoded.connect(lambda result, step, image: decoded.append((result, step, image)))
    try:
        worker.decode_step(finished, 2)  # starts at once and blocks in the backend
        qtbot.waitUntil(lambda: backend.decoded_steps == [2])
        for step in range(3, 16):  # the user drags on while step 2 decodes
            worker.decode_step(finished, step)
        gate.set()
        qtbot.waitUntil(lambda: len(decoded) == 2, timeout=5000)
        qtbot.wait(50)
        assert backend.decoded_steps == [2, 15]
        assert [step for _, step, _ in decoded] == [2, 15]
        assert decoded[1][0] is finished and red_of(decoded[1][2]) == 15
        worker.decode_step(finished, 99)  # a failure is logged; the worker goes on
        worker.decode_step(finished, 99)
        qtbot.waitUntil(lambda: backend.decoded_steps[-1] == 99)
        worker.decode_step(finished, 5)
        qtbot.waitUntil(lambda: len(decoded) == 3, timeout=5000)
        assert decoded[2][1] == 5
    finally:
        assert worker.shutdown(timeout=5)


def test_the_session_decodes_the_step_stopped_on_and_caches_it(qtbot, loaded):  # noqa: F811
    decoder = loaded.timeline_decoder
    shown = []
    decoder.decoded.connect(lambda step, image: shown.append((step, red_of(image))))
    decoder.request(3)  # no result yet: nothing to decode
    qtbot.wait(30)
    assert loaded.backend.decoded_steps == [] and shown == []

    finish(qtbot, loaded, typed("cat", steps=6))
    with qtbot.waitSignal(decoder.decoded, timeout=5000):
        decoder.request(4)
    assert shown == [(4, 4)]
    decoder.request(4)  # cached: at once, no second decode
    assert shown == [(4, 4), (4, 4)] and loaded.backend.decoded_steps == [4]

    finish(qtbot, loaded, typed("dog", steps=6))  # a new result: the old cache is gone
    assert decoder.cached(4) is None
    with qtbot.waitSignal(decoder.decoded, timeout=5000):
        decoder.request(4)
    assert loaded.backend.decoded_steps == [4, 4]


def test_another_model_forgets_the_timeline(qtbot, loaded):  # noqa: F811
    decoder = loaded.timeline_decoder
    finish(qtbot, loaded, typed("cat", steps=4))
    with qtbot.waitSignal(loaded.modelChanged, timeout=5000):
        loaded.load_model("/models/other")
    decoder.request(2)
    qtbot.wait(50)
    assert loaded.backend.decoded_steps == []  # its VAE must not decode the first model's latents


def test_the_real_backend_decodes_a_kept_step_with_the_vae(tiny_sd_folder):
    import numpy as np

    from ldm_studio.app.backend import TorchBackend
    from ldm_studio.engine.generation.decode import decode
    from ldm_studio.engine.preview import PreviewSettings, to_uint8

    backend = TorchBackend()
    backend.load(tiny_sd_folder, "cpu", "auto")
    request = GenerationRequest("cat", seed=3, steps=4, width=24, height=16, model=str(tiny_sd_folder))
    finished = backend.generate(request, lambda event: None, lambda: False, PreviewSettings("fast"))
    image = backend.decode_step(finished, 2)
    assert image.shape == (16, 24, 3) and image.dtype == np.uint8
    expected = to_uint8(decode(backend._model, finished.trajectory.step(2).x0))[0]
    np.testing.assert_array_equal(image, expected)
    last = backend.decode_step(finished, 4)  # the last step's x0 is (nearly) the saved image
    assert np.abs(last.astype(int) - np.asarray(finished.images[0], dtype=int)).mean() < 3
    import pytest

    from ldm_studio.engine.errors import GenerationError

    with pytest.raises(GenerationError, match="Step 9 is not in the last generation"):
        backend.decode_step(finished, 9)
    backend.unload()
