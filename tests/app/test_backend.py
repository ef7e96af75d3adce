"""What the window is told about a loaded model: the precision it really computes in."""

from __future__ import annotations

import pytest

from ldm_studio.app.backend import TorchBackend
from ldm_studio.engine import precision


@pytest.mark.parametrize("bf16_cpu", [True, False])
def test_the_summary_says_when_float32_weights_compute_in_bf16(tiny_sd_folder, monkeypatch, bf16_cpu):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: bf16_cpu)
    backend = TorchBackend()
    try:
        auto = backend.load(tiny_sd_folder, "cpu", "auto")
        forced = backend.load(tiny_sd_folder, "cpu", "float32")
    finally:
        backend.unload()
    assert auto.dtype == ("float32 + bf16 autocast" if bf16_cpu else "float32")
    assert forced.dtype == "float32"  # the user's explicit float32 is never autocast


def test_a_failed_switch_brings_the_previous_model_back(tiny_sd_folder, tmp_path):
    from ldm_studio.engine.errors import ModelLoadError
    from ldm_studio.engine.events import Failed, Finished
    from ldm_studio.engine.preview import PreviewSettings
    from ldm_studio.engine.request import GenerationRequest

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    backend = TorchBackend()
    try:
        first = backend.load(tiny_sd_folder, "cpu", "float32")
        with pytest.raises(ModelLoadError):
            backend.load(broken, "cpu", "float32")
        assert backend.current() == first  # loaded again, same description

        def run(model: str):
            request = GenerationRequest("a cat", seed=1, steps=2, model=model)
            return backend.generate(request, lambda _: None, lambda: False, PreviewSettings())

        assert isinstance(run(str(tiny_sd_folder)), Finished)
        queued_for_the_broken_one = run(str(broken))
        assert isinstance(queued_for_the_broken_one, Failed)
        assert "broken is not loaded" in queued_for_the_broken_one.message
    finally:
        backend.unload()
    assert backend.current() is None
