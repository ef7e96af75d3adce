import numpy as np
import pytest
import torch
from PIL import Image

from ldm_studio.engine.animation import export_animation, timeline_frames
from ldm_studio.engine.errors import CancelledError, GenerationError
from ldm_studio.engine.generate import generate
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.walk import WalkRequest, slerp, walk


def as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_slerp_keeps_the_ends_and_the_norm():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 8, 8, generator=generator), torch.randn(4, 8, 8, generator=generator)
    assert slerp(a, b, 0) is a and slerp(a, b, 1) is b
    middle = slerp(a, b, 0.5)
    assert abs(middle.norm() - a.norm()) / a.norm() < 0.1  # lerp would shrink it by ~30 %


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2M"])
def test_walk_ends_are_the_plain_generations(tiny_model, sampler):
    start = GenerationRequest("a cat", seed=10, steps=3, sampler=sampler)
    frames = walk(tiny_model, WalkRequest(start, to_seed=20, to_prompt="a dog", frames=4))
    assert len(frames) == 4
    first = generate(tiny_model, start).images[0]
    last = generate(tiny_model, start.replace(seed=20, prompt="a dog")).images[0]
    assert np.array_equal(as_array(frames[0]), as_array(first))
    assert np.array_equal(as_array(frames[-1]), as_array(last))
    assert not np.array_equal(as_array(frames[1]), as_array(frames[0]))


def test_walk_can_be_cancelled(tiny_model):
    done = []
    with pytest.raises(CancelledError):
        walk(
            tiny_model,
            WalkRequest(GenerationRequest("a", seed=1, steps=2), to_seed=2, frames=5),
            on_frame=lambda index, total, image: done.append(index),
            should_stop=lambda: len(done) >= 2,
        )
    assert done == [1, 2]


@pytest.mark.parametrize("suffix", [".webp", ".gif"])
@pytest.mark.parametrize("full", [False, True])
def test_timeline_exports_one_frame_per_step(tiny_model, tmp_path, suffix, full):
    result = generate(
        tiny_model, GenerationRequest("cat", seed=2, steps=5, sampler="Heun"), keep_trajectory=True
    )
    progress = []
    frames = timeline_frames(
        tiny_model, result.trajectory, (16, 16), full=full, on_progress=lambda d, t: progress.append((d, t))
    )
    assert len(frames) == 5 and progress[-1] == (5, 5)
    path = export_animation(frames, tmp_path / f"timeline{suffix}", fps=10, hold_last=1.5)
    with Image.open(path) as animation:
        assert animation.n_frames == 5
        if suffix == ".gif":  # Pillow reports per-frame durations for GIF only
            animation.seek(4)
            assert animation.info["duration"] == pytest.approx(100 + 1500, abs=20)


def test_export_refuses_unknown_formats_and_empty_timelines(tmp_path):
    frame = Image.new("RGB", (8, 8))
    with pytest.raises(GenerationError, match="webp"):
        export_animation([frame], tmp_path / "x.avi")
    with pytest.raises(GenerationError, match="no frames"):
        export_animation([], tmp_path / "x.gif")


def test_mp4_export_holds_the_last_frame(tmp_path):
    import imageio_ffmpeg

    frames = [Image.new("RGB", (32, 32), (40 * i, 0, 0)) for i in range(5)]
    path = export_animation(frames, tmp_path / "timeline.mp4", fps=10, hold_last=1.0)
    frame_count, seconds = imageio_ffmpeg.count_frames_and_secs(str(path))
    assert frame_count == 5 + 10  # one second held at 10 frames/s
    assert seconds == pytest.approx(1.5, abs=0.15)
