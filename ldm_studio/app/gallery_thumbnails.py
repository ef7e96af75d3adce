"""Loading thumbnails off the GUI thread, newest request first.

The view asks only for the items it paints, so the requests are exactly what is on screen. When the
user scrolls fast, older requests go stale: the queue is a bounded stack (last asked, first served,
oldest dropped), and a dropped item is simply asked for again if it is painted again.
"""

from __future__ import annotations

import threading
from collections import deque

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from ldm_studio.gallery.thumbnails import ThumbnailCache

MAX_QUEUED = 256


class _Drain(QRunnable):
    def __init__(self, loader: ThumbnailLoader) -> None:
        super().__init__()
        self.loader = loader

    def run(self) -> None:
        self.loader._drain()


class ThumbnailLoader(QObject):
    """``request(path)``; later ``loaded(path, QImage)`` or ``failed(path, reason)`` on the GUI thread."""

    loaded = Signal(str, QImage)
    failed = Signal(str, str)

    def __init__(self, cache: ThumbnailCache, threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._running = 0

    def request(self, path: str) -> None:
        with self._lock:
            if path in self._queued:
                return
            self._queue.append(path)
            self._queued.add(path)
            while len(self._queue) > MAX_QUEUED:
                self._queued.discard(self._queue.popleft())
            if self._running >= self.pool.maxThreadCount():
                return
            self._running += 1
        self.pool.start(_Drain(self))

    def cancel_all(self) -> None:
        """Forget queued requests (a new search): what is on screen next will ask again."""
        with self._lock:
            self._queue.clear()
            self._queued.clear()

    def wait(self, msecs: int = -1) -> bool:
        return self.pool.waitForDone(msecs)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._running -= 1
                    return
                path = self._queue.pop()
            try:
                image = QImage(str(self.cache.thumbnail_for(path)))
                if image.isNull():
                    raise ValueError("the cached thumbnail could not be decoded")
            except (ValueError, OSError) as error:
                self.failed.emit(path, str(error))
            else:
                self.loaded.emit(path, image)
            finally:
                with self._lock:
                    self._queued.discard(path)
