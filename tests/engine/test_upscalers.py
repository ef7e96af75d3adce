"""Upscaler files in the formats people have (ESRGAN's original keys, Real-ESRGAN's, the compact
SRVGG net; .pth and .safetensors), tiled upscaling, the built-in resizes and the library scan."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from ldm_studio.engine.catalog import UPSCALER
from ldm_studio.engine.errors import CancelledError, ModelLoadError
from ldm_studio.engine.upscalers import (
    LANCZOS,
    NEAREST,
    find_upscaler,
    load_upscaler,
    scan_upscalers,
    upscale,
)
from ldm_studio.engine.upscalers import library as upscaler_library
from ldm_studio.engine.upscalers.networks import RRDBNet, SRVGGNetCompact
from ldm_studio.engine.upscalers.tiling import run_tiled, tile_spans

# --- tiny networks saved the way real files are ------------------------------------------------


def tiny_rrdb(*, unshuffle: int = 1, seed: int = 0) -> RRDBNet:
    torch.manual_seed(seed)
    network = RRDBNet(features=8, growth=4, blocks=2, upsamples=2, unshuffle=unshuffle).eval()
    with torch.no_grad():  # random weights clamp most pixels to 0 or 1; keep the output mid-grey-ish
        network.conv_last.bias.fill_(0.5)
    return network


def real_esrgan_keys(network: RRDBNet) -> dict[str, torch.Tensor]:
    """Real-ESRGAN / BasicSR names: conv_first, body.N.rdbK.convJ, conv_body, conv_up1, conv_up2…"""
    renamed = {}
    for name, value in network.state_dict().items():
        if name.startswith("conv_ups."):
            index, kind = name.split(".")[1:]
            name = f"conv_up{int(index) + 1}.{kind}"
        renamed[name] = value.clone()
    return renamed


def original_esrgan_keys(network: RRDBNet) -> dict[str, torch.Tensor]:
    """ESRGAN's first release: model.0, model.1.sub.N.RDBK.convJ.0, model.1.sub.<last>, model.3…"""
    blocks = len(network.body)
    upsamples = len(network.conv_ups)
    # Upsample, conv, LeakyReLU per ×2 stage from index 2; then conv, LeakyReLU, conv.
    tail = {f"conv_ups.{n}": 3 + 3 * n for n in range(upsamples)}
    tail["conv_hr"] = 2 + 3 * upsamples
    tail["conv_last"] = 4 + 3 * upsamples
    renamed = {}
    for name, value in network.state_dict().items():
        parts = name.split(".")
        if parts[0] == "conv_first":
            key = f"model.0.{parts[1]}"
        elif parts[0] == "body":
            key = f"model.1.sub.{parts[1]}.RDB{parts[2][-1]}.{parts[3]}.0.{parts[4]}"
        elif parts[0] == "conv_body":
            key = f"model.1.sub.{blocks}.{parts[1]}"
        else:
            module = ".".join(parts[:-1])
            key = f"model.{tail[module]}.{parts[-1]}"
        renamed[key] = value.clone()
    return renamed


def tiny_compact(seed: int = 0, scale: int = 4) -> SRVGGNetCompact:
    torch.manual_seed(seed)
    return SRVGGNetCompact(features=8, convs=2, scale=scale).eval()


def write_upscaler(path: Path, tensors: dict[str, torch.Tensor], *, wrap: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: value.contiguous() for name, value in tensors.items()}
    if path.suffix == ".safetensors":
        save_file(tensors, str(path))
    else:
        torch.save({wrap: tensors} if wrap else tensors, path)
    return path


def smooth_image(width: int, height: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack([x / width, y / height, 0.5 + 0.4 * np.sin((x + y) / 9)], axis=-1)
    return Image.fromarray((pixels * 255).round().astype(np.uint8), "RGB")


def swinir_like(path: Path) -> Path:
    """A file with SwinIR's characteristic tensors (not a working SwinIR: that needs spandrel)."""
    return write_upscaler(
        path,
        {
            "conv_first.weight": torch.zeros(12, 3, 3, 3),
            "layers.0.residual_group.blocks.0.attn.relative_position_bias_table": torch.zeros(49, 2),
            "layers.0.residual_group.blocks.0.norm1.weight": torch.zeros(12),
        },
    )


@pytest.fixture
def without_spandrel(monkeypatch):
    monkeypatch.setattr(upscaler_library, "spandrel_module", lambda: None)


# --- detection and loading ---------------------------------------------------------------------


def test_scan_describes_every_kind_of_file(tmp_path, without_spandrel):
    folder = tmp_path / "ESRGAN"
    write_upscaler(folder / "4x-old.pth", original_esrgan_keys(tiny_rrdb()))
    write_upscaler(folder / "4x-new.safetensors", real_esrgan_keys(tiny_rrdb()))
    write_upscaler(
        folder / "RealESRGAN_x2plus.pth", real_esrgan_keys(tiny_rrdb(unshuffle=2)), wrap="params_ema"
    )
    write_upscaler(folder / "realesr-general-x4v3.pth", tiny_compact().state_dict(), wrap="params")
    swinir_like(folder / "sub" / "SwinIR_x2.safetensors")
    (folder / "broken.pth").write_bytes(b"not a checkpoint")

    infos = {info.name: info for info in scan_upscalers([folder])}

    assert sorted(infos) == sorted(
        ["4x-old", "4x-new", "RealESRGAN_x2plus", "realesr-general-x4v3", "SwinIR_x2", "broken"]
    )
    described = {name: (info.architecture, info.scale, info.builtin) for name, info in infos.items()}
    assert described["4x-old"] == ("ESRGAN", 4, True)
    assert described["4x-new"] == ("ESRGAN", 4, True)
    assert described["RealESRGAN_x2plus"] == ("ESRGAN", 2, True)
    assert described["realesr-general-x4v3"] == ("Real-ESRGAN compact", 4, True)
    assert described["SwinIR_x2"] == ("SwinIR", None, False)
    assert "pip install 'ldm-studio[upscalers]'" in infos["SwinIR_x2"].problem
    assert infos["broken"].architecture == "unreadable" and "not a weights file" in infos["broken"].problem
    assert all(info.problem == "" for name, info in infos.items() if name not in ("SwinIR_x2", "broken"))
    assert infos["4x-new"].size == (folder / "4x-new.safetensors").stat().st_size


def test_both_esrgan_layouts_and_formats_give_the_same_pixels(tmp_path):
    network = tiny_rrdb(seed=3)
    old = load_upscaler(write_upscaler(tmp_path / "old.pth", original_esrgan_keys(network)))
    new = load_upscaler(write_upscaler(tmp_path / "new.safetensors", real_esrgan_keys(network)))
    image = smooth_image(20, 14)

    reference = np.asarray(upscale(image, new, 4))
    assert reference.shape == (56, 80, 3)
    assert np.array_equal(np.asarray(upscale(image, old, 4)), reference)
    with torch.no_grad():  # and both are the network they were made from
        direct = network(torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None])
    expected = (direct[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(expected - reference).max() <= 1
    assert reference.std() > 1  # not a flat image: the comparison means something


def test_pixel_unshuffle_models_take_odd_sizes(tmp_path):
    model = load_upscaler(write_upscaler(tmp_path / "x2.pth", real_esrgan_keys(tiny_rrdb(unshuffle=2))))
    assert (model.scale, model.size_multiple) == (2, 2)
    assert upscale(smooth_image(15, 9), model, 2).size == (30, 18)


def test_the_compact_net_adds_detail_to_a_nearest_enlargement(tmp_path):
    network = tiny_compact()
    with torch.no_grad():
        network.body[-1].weight.zero_()
        network.body[-1].bias.zero_()
    model = load_upscaler(write_upscaler(tmp_path / "compact.safetensors", network.state_dict()))
    image = smooth_image(12, 10)
    assert np.array_equal(np.asarray(upscale(image, model, 4)), np.asarray(NEAREST.resize(image, (48, 40))))


def test_a_malicious_pickle_runs_nothing(tmp_path, without_spandrel):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "folder" / "4x-evil.pth"
    path.parent.mkdir()
    torch.save({"model.0.weight": torch.zeros(1), "payload": Payload()}, path)

    with pytest.raises(ModelLoadError, match="refused.*could run code"):
        load_upscaler(path)
    (info,) = scan_upscalers([path.parent])
    assert info.architecture == "unreadable" and "refused" in info.problem
    assert not marker.exists()


def test_other_architectures_need_spandrel(tmp_path):
    path = swinir_like(tmp_path / "SwinIR.safetensors")
    with pytest.raises(
        ModelLoadError, match=r"SwinIR upscaler; to open it, install .*ldm-studio\[upscalers\]"
    ):
        load_upscaler(path, spandrel=lambda: None)


def test_find_upscaler_by_builtin_name_path_or_library_name(tmp_path, without_spandrel):
    assert find_upscaler("lanczos") is LANCZOS
    path = write_upscaler(UPSCALER.default_folder() / "4x-Mine.pth", real_esrgan_keys(tiny_rrdb()))
    assert find_upscaler("4x-mine").path == path
    assert find_upscaler(str(path)).architecture == "ESRGAN"
    with pytest.raises(ModelLoadError, match="no upscaler called 'nothing'"):
        find_upscaler("nothing")


# --- tiling ------------------------------------------------------------------------------------


def _as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255


def test_tiled_equals_untiled(tmp_path):
    pixels = _as_array(smooth_image(90, 70))
    for name, tensors in (
        ("compact", tiny_compact(seed=1).state_dict()),
        ("esrgan", real_esrgan_keys(tiny_rrdb(seed=1))),
    ):
        model = load_upscaler(write_upscaler(tmp_path / f"{name}.pth", tensors))
        untiled = run_tiled(model, pixels, tile=512, overlap=0)
        tiled = run_tiled(model, pixels, tile=32, overlap=24)
        assert len(tile_spans(90, 32, 24)) > 3 and len(tile_spans(70, 32, 24)) > 3
        assert np.abs(tiled - untiled).max() < 1e-3


def _column_steps(pixels: np.ndarray) -> np.ndarray:
    """Difference between each output column and the next (rows × columns-1 × channels)."""
    return np.diff(pixels, axis=1)


def _border_columns(spans, scale: int) -> list[int]:
    """Output columns where one tile hands over to the next (the whole blend band)."""
    columns: set[int] = set()
    for span in spans[1:]:
        columns.update(range(span.start * scale - 1, (span.start + span.overlap_before) * scale))
    return sorted(columns)


def test_tile_borders_leave_no_seam(tmp_path):
    model = load_upscaler(write_upscaler(tmp_path / "esrgan.pth", real_esrgan_keys(tiny_rrdb(seed=2))))
    pixels = _as_array(smooth_image(96, 24))
    untiled = run_tiled(model, pixels, tile=512, overlap=0)
    one_level = 1 / 255

    def seam(tile: int, overlap: int) -> tuple[np.ndarray, np.ndarray]:
        """(steps at tile borders, how much tiling changed them)"""
        tiled = run_tiled(model, pixels, tile=tile, overlap=overlap)
        borders = _border_columns(tile_spans(96, tile, overlap), model.scale)
        steps = _column_steps(tiled)[:, borders]
        return np.abs(steps), np.abs(steps - _column_steps(untiled)[:, borders])

    # the measure sees a seam where there is one: tiles that do not overlap
    _, naive_change = seam(32, 0)
    assert naive_change.max() > one_level

    steps, change = seam(32, 8)
    elsewhere = np.delete(np.abs(_column_steps(untiled)), _border_columns(tile_spans(96, 32, 8), 4), axis=1)
    assert steps.max() <= elsewhere.max()  # no step at a border larger than the picture has elsewhere
    assert change.max() < one_level / 4


def test_progress_per_tile_and_cancel_between_tiles(tmp_path):
    model = load_upscaler(write_upscaler(tmp_path / "c.pth", tiny_compact().state_dict()))
    image = smooth_image(60, 40)
    seen: list[tuple[int, int]] = []
    upscale(image, model, 4, tile=24, overlap=8, on_progress=lambda done, total: seen.append((done, total)))
    total = len(tile_spans(60, 24, 8)) * len(tile_spans(40, 24, 8))
    assert seen == [(n, total) for n in range(1, total + 1)] and total >= 6

    seen.clear()
    with pytest.raises(CancelledError):
        upscale(
            image,
            model,
            4,
            tile=24,
            overlap=8,
            on_progress=lambda done, total: seen.append((done, total)),
            should_stop=lambda: len(seen) >= 2,
        )
    assert [done for done, _ in seen] == [1, 2]


def test_scales_other_than_the_networks_own(tmp_path):
    model = load_upscaler(write_upscaler(tmp_path / "c.safetensors", tiny_compact(scale=2).state_dict()))
    image = smooth_image(16, 12)
    assert upscale(image, model, 1.5).size == (24, 18)  # one ×2 pass, then Lanczos down
    seen: list[tuple[int, int]] = []
    assert upscale(image, model, 4, on_progress=lambda *p: seen.append(p)).size == (64, 48)
    assert seen[-1] == (2, 2)  # two ×2 passes, one tile each


def test_alpha_survives_and_builtin_resizes_match_pillow(tmp_path):
    model = load_upscaler(write_upscaler(tmp_path / "c.pth", tiny_compact().state_dict()))
    image = smooth_image(10, 8).convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize((10, 8)))
    result = upscale(image, model, 4)
    assert result.mode == "RGBA"
    assert np.array_equal(
        np.asarray(result.getchannel("A")),
        np.asarray(image.getchannel("A").resize((40, 32), Image.Resampling.LANCZOS)),
    )

    plain = smooth_image(30, 20)
    assert np.array_equal(
        np.asarray(upscale(plain, LANCZOS, 2.5)), np.asarray(plain.resize((75, 50), Image.Resampling.LANCZOS))
    )
    with pytest.raises(ValueError, match="positive"):
        upscale(plain, LANCZOS, 0)
