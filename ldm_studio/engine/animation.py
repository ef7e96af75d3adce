"""Turning a trajectory or a latent walk into an animation: WebP and GIF with Pillow, MP4 optionally."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from ldm_studio.engine.errors import CancelledError, GenerationError
from ldm_studio.engine.generation.decode import decode
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.preview import fast_preview, tile, to_uint8
from ldm_studio.engine.trajectory import Trajectory

FORMATS = (".webp", ".gif", ".mp4")
Progress = Callable[[int, int], None]


def mp4_available() -> bool:
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def export_animation(frames: list[Image.Image], path: Path, fps: float = 8.0, hold_last: float = 1.0) -> Path:
    """Write ``frames`` to ``path`` (format from the suffix); the last frame stays ``hold_last`` s longer."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise GenerationError(f"Cannot write {path.name}: choose a .webp, .gif or .mp4 file.")
    if not frames:
        raise GenerationError("There are no frames to export.")
    frame_ms = max(20, round(1000 / fps))
    if suffix == ".mp4":
        return _write_mp4(frames, path, fps, hold_last)
    durations = [frame_ms] * len(frames)
    durations[-1] += round(hold_last * 1000)
    rgb = [frame.convert("RGB") for frame in frames]
    options = {"lossless": True} if suffix == ".webp" else {"optimize": False, "disposal": 1}
    try:
        rgb[0].save(path, save_all=True, append_images=rgb[1:], duration=durations, loop=0, **options)
    except OSError as error:
        raise GenerationError(f"Cannot write {path}: {error.strerror or error}.") from error
    return path


def _write_mp4(frames: list[Image.Image], path: Path, fps: float, hold_last: float) -> Path:
    if not mp4_available():
        raise GenerationError(
            "MP4 export needs the optional video support: pip install 'ldm-studio[video]' "
            "(or export .webp / .gif instead)."
        )
    import imageio_ffmpeg
    import numpy as np

    # H.264 wants even sizes; enlarge small images crisply so a 32 px emoji is watchable.
    width, height = frames[0].size
    scale = max(1, 256 // max(width, height))
    size = ((width * scale + 1) // 2 * 2, (height * scale + 1) // 2 * 2)
    held = frames + [frames[-1]] * round(hold_last * fps)
    writer = imageio_ffmpeg.write_frames(str(path), size, fps=fps, macro_block_size=1, quality=8)
    writer.send(None)
    try:
        for frame in held:
            resized = frame.convert("RGB").resize(size, Image.Resampling.NEAREST)
            writer.send(np.ascontiguousarray(np.asarray(resized)))
    finally:
        writer.close()
    return path


@torch.no_grad()
def timeline_frames(
    model: LoadedModel,
    trajectory: Trajectory,
    size: tuple[int, int],
    *,
    full: bool = False,
    on_progress: Progress = lambda done, total: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[Image.Image]:
    """One image per kept step: the Fast projection of its x0, or a full VAE decode (slower)."""
    kept = [step for step in trajectory.steps if step.x0 is not None]
    frames = []
    for number, step in enumerate(kept, start=1):
        if should_stop():
            raise CancelledError(number - 1)
        x0 = step.x0.to(model.placement.device)
        if full or model.projection is None:
            array = tile(to_uint8(decode(model, x0.to(next(model.pipe.vae.parameters()).dtype))))
        else:
            array = fast_preview(x0, model.projection, (size[1], size[0]))
        frames.append(Image.fromarray(array))
        on_progress(number, len(kept))
    # hires fix decodes its second pass larger: every frame at the final size, as animations need
    last = frames[-1].size if frames else None
    return [frame if frame.size == last else frame.resize(last, Image.Resampling.BICUBIC) for frame in frames]
