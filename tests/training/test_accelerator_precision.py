"""Two trainings in one process (the window trains twice) may ask accelerate for different precisions."""

from __future__ import annotations

from ldm_studio.training.config import RunConfig
from ldm_studio.training.session import make_accelerator


def test_a_second_training_in_the_same_process_gets_its_own_precision() -> None:
    first = make_accelerator(RunConfig(mixed_precision="bf16"))
    assert first.mixed_precision == "bf16"
    second = make_accelerator(RunConfig(mixed_precision="no"))
    assert second.mixed_precision == "no"
    third = make_accelerator(RunConfig(mixed_precision="bf16"))
    assert third.mixed_precision == "bf16"
