"""Cancel a hundred generations at random moments, then check that the next one is untouched by them."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
from PySide6.QtCore import Qt

from ldm_studio.engine.generate import generate
from ldm_studio.engine.preview_settings import PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from tests.faults.helpers import wait_until

# Samplers with history (multistep DPM++, UniPC) and ancestral noise, so a state leak would show.
SAMPLERS = ("Euler a", "DPM++ 2M", "UniPC", "Heun", "DDIM")
STORM = 100


class Outcomes:
    """Every ending the worker reports, collected on the GUI thread."""

    def __init__(self, worker) -> None:
        self.cancelled: list = []
        self.finished: list = []
        self.failed: list[str] = []
        worker.jobCancelled.connect(self.cancelled.append)
        worker.jobFinished.connect(self.finished.append)
        worker.jobFailed.connect(self.failed.append)

    @property
    def count(self) -> int:
        return len(self.cancelled) + len(self.finished) + len(self.failed)


def test_a_hundred_cancels_then_a_normal_generation_is_exact(qtbot, real_worker, tiny_model):
    worker, saver = real_worker
    outcomes = Outcomes(worker)
    rng = random.Random(7)
    cancel_at = {"step": 0}

    def cancel_on_step(update) -> None:
        # Runs on the worker thread, right after step ``update.index``: a cancel at an exact step.
        if update.index == cancel_at["step"]:
            worker.cancel()

    worker.jobStep.connect(cancel_on_step, Qt.ConnectionType.DirectConnection)
    for number in range(STORM):
        steps = rng.randint(2, 5)
        request = GenerationRequest(
            f"storm {number % 7}", seed=1000 + number, steps=steps, sampler=rng.choice(SAMPLERS), guidance=4
        )
        how = rng.choice(("at step", "at step", "from the GUI"))
        cancel_at["step"] = rng.randint(1, steps) if how == "at step" else 0
        worker.generate(request, PreviewSettings(rng.choice(("fast", "off", "full"))))
        if how == "from the GUI":
            time.sleep(rng.uniform(0.0, 0.01))  # anywhere: queued, mid-step, decoding
            worker.cancel()
        wait_until(lambda number=number: outcomes.count == number + 1)
    cancel_at["step"] = 0

    assert outcomes.failed == []
    assert len(outcomes.cancelled) >= STORM * 2 // 3  # every exact-step cancel, most GUI ones
    # A GUI cancel may lose the race to a generation's end; only those finished results were saved.
    assert [result.request.seed for result in saver.results] == [
        update.result.request.seed for update in outcomes.finished
    ]
    cancelled_seeds = {event.request.seed for event in outcomes.cancelled}
    assert cancelled_seeds.isdisjoint(result.request.seed for result in saver.results)

    final = GenerationRequest("a red apple", seed=77, steps=6, sampler="DPM++ 2M", guidance=5)
    with qtbot.waitSignal(worker.jobFinished, timeout=30_000) as finished:
        worker.generate(final, PreviewSettings("fast"))
    assert saver.results[-1] is finished.args[0].result
    expected = generate(tiny_model, final)
    got = np.asarray(saver.results[-1].images[0])
    assert np.array_equal(got, np.asarray(expected.images[0]))


def test_cancel_pressed_as_the_worker_picks_the_job_up_still_cancels_it(qtbot, real_worker):
    """The moment between taking a job off the queue and starting it must not swallow a cancel."""
    worker, saver = real_worker
    outcomes = Outcomes(worker)
    pressed = threading.Event()

    def cancel_when_busy(busy: bool) -> None:
        # busyChanged(True) is emitted on the worker thread once it holds the job, before it runs.
        if busy and not pressed.is_set():
            pressed.set()
            worker.cancel()

    worker.busyChanged.connect(cancel_when_busy, Qt.ConnectionType.DirectConnection)
    worker.generate(GenerationRequest("late cancel", seed=5, steps=4), PreviewSettings("off"))
    wait_until(lambda: outcomes.count == 1)
    assert pressed.is_set()
    assert outcomes.finished == [] and saver.results == []
    assert len(outcomes.cancelled) == 1
