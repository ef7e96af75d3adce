"""The true x0 of the timeline step the user stops on: decoded with the real VAE, off the GUI thread.

Scrubbing sends a request per slider position; decoding each would queue seconds of work behind the
user's hand. So the worker keeps one *slot*: a request replaces the one not yet started, and the
worker decodes only the last one asked for (``StepDecodeSlot``). Decoded steps are cached here, per
result, so going back to a step shows it at once. The timeline shows the kept (fast) preview first;
``decoded`` brings the real picture when it is ready.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

log = logging.getLogger(__name__)

CACHE_STEPS = 200  # decoded steps kept per result (a 512² RGB QImage is 768 KB)


class StepDecodeSlot:
    """Latest-wins: the one (result, step) the worker should decode next. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wanted: tuple[Any, int] | None = None
        self._queued = False

    def want(self, finished: Any, step: int) -> bool:
        """Remember the wish; True when the worker needs a new job for it (none is waiting)."""
        with self._lock:
            self._wanted = (finished, step)
            if self._queued:
                return False
            self._queued = True
            return True

    def take(self) -> tuple[Any, int] | None:
        """The worker's side: the last wish, and the slot open again."""
        with self._lock:
            wanted, self._wanted, self._queued = self._wanted, None, False
            return wanted

    def drop(self) -> None:
        with self._lock:
            self._wanted = None


def run_step_decode(
    slot: StepDecodeSlot,
    decode: Callable[[Any, int], Any],
    to_image: Callable[[Any], QImage],
    emit: Callable[[Any, int, QImage], None],
) -> None:
    """On the worker thread: decode the slot's last wish (if any) and hand back its image.

    A failure is logged, not shown: the timeline keeps the preview it had, which is still right.
    """
    wanted = slot.take()
    if wanted is None:
        return
    finished, step = wanted
    try:
        image = to_image(decode(finished, step))
    except Exception as error:  # the worker must survive; the fast preview stays on screen
        log.warning("could not decode timeline step %s: %s", step, error)
        return
    emit(finished, step, image)


class TimelineDecoder(QObject):
    """GUI-thread side: asks the worker for steps of the last result, caches what comes back."""

    decoded = Signal(int, object)  # real step, QImage: the true x0 of the current result

    def __init__(self, worker: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._worker = worker
        self._finished: Any = None  # engine.events.Finished whose trajectory the timeline shows
        self._cache: dict[int, QImage] = {}
        worker.stepDecoded.connect(self._arrived)

    def set_result(self, finished: Any) -> None:
        """A new result (or None): its steps are decoded from now on, the old cache goes."""
        if finished is self._finished:
            return
        self._finished = finished if getattr(finished, "trajectory", None) is not None else None
        self._cache = {}
        self._worker.drop_step_decodes()

    def cached(self, step: int) -> QImage | None:
        return self._cache.get(step)

    def request(self, step: int) -> None:
        """Show real step ``step``: at once when cached, else after the worker decoded it."""
        if self._finished is None:
            return
        image = self._cache.get(step)
        if image is not None:
            self.decoded.emit(step, image)
            return
        self._worker.decode_step(self._finished, step)

    def _arrived(self, finished: Any, step: int, image: QImage) -> None:
        if finished is not self._finished:
            return  # a step of a result the timeline no longer shows
        if len(self._cache) >= CACHE_STEPS:
            self._cache.pop(next(iter(self._cache)))
        self._cache[step] = image
        self.decoded.emit(step, image)


def timeline_decoder_for(session: Any) -> TimelineDecoder:
    """The session's decoder: it follows the last result, and forgets it when the model changes
    (another model's VAE must not decode those latents)."""
    decoder = TimelineDecoder(session.worker, session)
    session.resultChanged.connect(lambda update: decoder.set_result(update.result))
    session.modelChanged.connect(
        lambda _summary: decoder.set_result(session.branch_source and session.branch_source.result)
    )
    return decoder
