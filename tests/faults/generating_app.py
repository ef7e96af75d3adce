"""The real app (``ldm-studio --model PATH``) that starts a long generation as soon as its model is ready.

Run by test_close.py as a child process, so a signal can arrive in the middle of a generation the way
it does in real life. Prints ``GENERATING`` once the generation has started. With ``--slow`` one step
takes longer than the window waits for the worker on close (as an SD 1.5 step on a CPU does).
"""

from __future__ import annotations

import sys

from ldm_studio.app import session as session_module
from ldm_studio.app.draft import Draft
from ldm_studio.engine.request import GenerationRequest

LONG_REQUEST = GenerationRequest("a long one", seed=1, steps=200, batch_size=4)
# The tiny test model's attention at 256x256 (4,096 tokens) takes ~10 s a step on this CPU.
SLOW_REQUEST = GenerationRequest("a slow one", seed=1, steps=200, width=256, height=256)


def main() -> int:
    show_loaded = session_module.Session._on_loaded

    def loaded_then_generate(session: session_module.Session, summary: object) -> None:
        show_loaded(session, summary)
        announced = []

        def started(_request: object) -> None:
            if not announced:
                announced.append(True)
                print("GENERATING", flush=True)

        session.worker.jobStarted.connect(started)
        request = SLOW_REQUEST if "--slow" in sys.argv else LONG_REQUEST
        session.replace_draft(Draft(request, request.seed, random_seed=False))  # the window shows it
        session.generate()

    session_module.Session._on_loaded = loaded_then_generate
    from ldm_studio.__main__ import main as app_main

    return app_main(["--model", sys.argv[1]])


if __name__ == "__main__":
    sys.exit(main())
