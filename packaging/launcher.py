"""Entry point of the frozen (PyInstaller) application: the same ``main`` as ``ldm-studio``.

A separate script rather than ``ldm_studio/__main__.py`` because a frozen program must call
``multiprocessing.freeze_support()`` first: on Windows and macOS, data-loader worker processes of
the training commands re-launch this executable, and without it each worker would open a window.
"""

import multiprocessing
import sys

from ldm_studio.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
