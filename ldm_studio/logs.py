"""Logging: a rotating file in the user's log folder, and stderr."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"


def setup_logging(log_dir: Path, level: int = logging.INFO) -> Path:
    """Send everything to ``log_dir/ldm-studio.log`` (rotated) and warnings to stderr."""
    root = logging.getLogger()
    log_file = log_dir / "ldm-studio.log"
    if any(getattr(handler, "baseFilename", None) == str(log_file) for handler in root.handlers):
        return log_file
    root.setLevel(level)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
        )
        file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(file_handler)
    except OSError as error:  # a read-only home must not stop the app
        logging.getLogger(__name__).warning("cannot write the log file %s: %s", log_file, error)
    stderr = logging.StreamHandler()
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(stderr)
    return log_file
