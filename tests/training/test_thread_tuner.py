"""The thread tuner keeps two threads only while they are clearly faster, and drops back at once."""

from __future__ import annotations

import torch

from ldm_studio.training.session import ThreadTuner


def test_tuner_probes_keeps_faster_threads_and_falls_back() -> None:
    before = torch.get_num_threads()
    try:
        tuner = ThreadTuner(max_threads=2, probe_every=5, probe_steps=3)
        assert torch.get_num_threads() == 1
        for _ in range(5):
            tuner.step_took(1.0)
        assert torch.get_num_threads() == 2  # probing
        for seconds in (2.0, 0.5, 0.5, 0.5):  # the first probe step is a warm-up
            tuner.step_took(seconds)
        assert torch.get_num_threads() == 2  # kept: twice as fast
        tuner.step_took(0.55)
        assert torch.get_num_threads() == 2
        tuner.step_took(5.0)  # another job arrived
        assert torch.get_num_threads() == 1
        for _ in range(5):
            tuner.step_took(1.0)
        for seconds in (1.0, 1.1, 1.0, 1.2):  # not faster this time
            tuner.step_took(seconds)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
