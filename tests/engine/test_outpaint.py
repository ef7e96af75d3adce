"""Outpainting: the value and its parser, the extended canvas and seam mask, and generations through
the ordinary inpainting path with an ordinary and a 9-channel inpainting UNet."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ldm_studio.engine.events import Finished
from ldm_studio.engine.generate import generate
from ldm_studio.engine.outpaint import DEFAULT_FILL, FILLS, Outpaint, as_outpaint, extend
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import encode_png, metadata_from_chunks, split_record


# ---- the value and its parser ---------------------------------------------------------------------
def test_sides_round_up_to_whole_latent_pixels():
    assert Outpaint(left=1, right=128, top=9) == Outpaint(left=8, right=128, top=16)
    assert Outpaint(left=30).added == (32, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("left=128,right=128", Outpaint(left=128, right=128)),
        (" top = 64 , down=8 ", Outpaint(top=64, bottom=8)),
        ("all=32,fill=noise", Outpaint(32, 32, 32, 32, fill="noise")),
        ("right=100,feather=4,fill=EDGE", Outpaint(right=104, fill="edge", feather=4)),
    ],
)
def test_good_strings_parse(text, expected):
    assert Outpaint.parse(text) == expected
    assert Outpaint.parse(expected.text()) == expected  # the recorded text reads back the same


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "names no side"),
        ("fill=edge", "names no side"),
        ("left", "side=pixels"),
        ("left=", "side=pixels"),
        ("left=-8", "whole number"),
        ("left=1.5", "whole number"),
        ("sideways=8", "unknown outpaint key 'sideways'"),
        ("left=0", "at least one side"),
        ("left=99999", "0..4096"),
        ("left=8,fill=smear", "unknown outpaint fill 'smear'"),
        ("aspect=16:9", "needs the source image's size"),
        ("aspect=16:0", "looks like 16:9"),
    ],
)
def test_bad_strings_say_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=says):
        Outpaint.parse(text)


def test_an_aspect_ratio_extends_the_short_way_evenly():
    assert Outpaint.parse("aspect=16:9", (512, 512)) == Outpaint(left=200, right=200)  # 911 -> 912 wide
    assert Outpaint.parse("aspect=1:2,fill=edge", (64, 64)) == Outpaint(top=32, bottom=32, fill="edge")
    assert Outpaint.to_aspect((100, 64), 2).canvas_for((100, 64)) == (128, 64)  # from 96 (floored)
    with pytest.raises(ValueError, match="already has the aspect"):
        Outpaint.parse("aspect=1", (64, 64))
    with pytest.raises(ValueError, match="not both"):
        Outpaint.parse("aspect=2,left=8", (64, 64))


def test_canvas_and_inner_sizes():
    outpaint = Outpaint(left=16, right=8, bottom=24)
    assert outpaint.canvas_for((45, 40)) == (40 + 24, 40 + 24)  # the source floored to 8, plus the sides
    assert outpaint.inner((64, 64)) == (40, 40)
    with pytest.raises(ValueError, match="leaves no room"):
        outpaint.inner((24, 64))


def test_the_request_holds_it_checks_it_and_reads_it_back_from_json():
    request = GenerationRequest("x", init_image="a.png", outpaint="left=16", width=48, height=32)
    assert request.outpaint == Outpaint(left=16)
    again = GenerationRequest.from_dict(request.to_dict())
    assert again == request
    assert as_outpaint(None) is None
    with pytest.raises(ValueError, match="needs a source image"):
        GenerationRequest("x", outpaint=Outpaint(left=8))
    with pytest.raises(ValueError, match="leaves no room"):
        GenerationRequest("x", init_image="a.png", outpaint=Outpaint(left=64), width=64, height=64)


# ---- extend() ---------------------------------------------------------------------------------------
@pytest.fixture
def picture() -> Image.Image:
    rng = np.random.default_rng(0)
    array = np.zeros((24, 32, 3), dtype=np.uint8)
    array[..., 0] = np.linspace(0, 255, 32, dtype=np.uint8)[None, :]  # a gradient to continue
    array[..., 1] = 120
    array[..., 2] = rng.integers(0, 255, (24, 32))
    return Image.fromarray(array)


@pytest.mark.parametrize("fill", FILLS)
def test_extend_keeps_the_old_image_and_fills_the_new_area(picture, fill):
    outpaint = Outpaint(left=16, right=8, top=8, fill=fill)
    image, mask = extend(picture, outpaint, seed=3)
    assert image.size == mask.size == (32 + 24, 24 + 8)
    assert (image.mode, mask.mode) == ("RGB", "L")
    pixels = np.asarray(image)
    assert np.array_equal(pixels[8:, 16:48], np.asarray(picture))  # the old image, untouched
    new = np.asarray(mask) == 255
    assert new[:8].all() and new[:, :16].all() and new[:, 48:].all()
    if fill == "edge":
        assert np.array_equal(pixels[20, :16], np.repeat(pixels[20, 16:17], 16, axis=0))
    else:  # mirror is blurred and noise is random: neither copies the border column
        assert not np.array_equal(pixels[20, :16], np.repeat(pixels[20, 16:17], 16, axis=0))
    assert abs(pixels[8:, :16, 1].mean() - 120) < 10  # the new area takes the image's colour


def test_the_seam_mask_feathers_into_the_old_image_only_on_extended_sides(picture):
    image, mask = extend(picture, Outpaint(left=16, feather=8))
    grey = np.asarray(mask, dtype=np.float32) / 255
    row = grey[12]
    assert (row[:16] == 1).all()
    ramp = row[16:24]
    assert (np.diff(ramp) < 0).all() and 0 < ramp[-1] < ramp[0] < 1  # falls across 8 px of the old image
    assert (row[24:] == 0).all()  # deeper in, and at the right border (not extended), nothing is repainted
    assert (grey[:, 24:] == 0).all()
    unfeathered = np.asarray(extend(picture, Outpaint(left=16, feather=0))[1])
    assert set(np.unique(unfeathered)) == {0, 255}


def test_noise_fill_follows_the_seed(picture):
    first = np.asarray(extend(picture, Outpaint(left=8, fill="noise"), seed=1)[0])
    assert np.array_equal(first, np.asarray(extend(picture, Outpaint(left=8, fill="noise"), seed=1)[0]))
    assert not np.array_equal(first, np.asarray(extend(picture, Outpaint(left=8, fill="noise"), seed=2)[0]))


def test_the_default_fill_is_a_known_one():
    assert DEFAULT_FILL in FILLS and Outpaint(left=8).fill == DEFAULT_FILL


# ---- through the engine -------------------------------------------------------------------------------
@pytest.fixture
def source_path(tmp_path, picture):
    path = tmp_path / "source.png"
    picture.save(path)
    return path, np.asarray(picture, dtype=np.int16)


def outpainted(model, path, **changes):
    request = GenerationRequest(
        "x",
        seed=5,
        steps=4,
        init_image=str(path),
        strength=changes.pop("strength", 1.0),
        outpaint=Outpaint(left=16, right=8, top=8, feather=8),
        width=56,
        height=32,
        **changes,
    )
    result = generate(model, request)
    assert isinstance(result, Finished), result
    return result


def assert_old_area_kept(image, array):
    result = np.asarray(image, dtype=np.int16)
    assert result.shape == (32, 56, 3)  # the extended size
    old = result[8:, 16:48]
    # Away from the feathered seam the source is kept exactly (composited back), the seam is repainted.
    assert np.abs(old[8:, 8:-8] - array[8:, 8:-8]).max() <= 1  # 8 px in from the top, left and right
    assert np.abs(old[:, :2] - array[:, :2]).mean() > 5  # the feathered seam itself was repainted
    assert np.abs(result[:8] - result[:8].mean()).mean() > 0  # something was painted above


def test_an_ordinary_model_outpaints_to_the_extended_size(tiny_model, source_path):
    path, array = source_path
    result = outpainted(tiny_model, path, strength=0.75)
    assert result.images[0].size == (56, 32)
    assert_old_area_kept(result.images[0], array)
    assert result.metadata["outpaint"] == "left=16,right=8,top=8"


def test_a_nine_channel_inpainting_model_outpaints_too(tmp_path, source_path):
    from ldm_studio.engine.loader import load_model
    from tests.tiny_models import build_tiny_sd

    model = load_model(build_tiny_sd(tmp_path / "tiny-inpaint", inpainting=True), device="cpu")
    assert model.pipe.unet.config.in_channels == 9
    path, array = source_path
    result = outpainted(model, path)
    assert_old_area_kept(result.images[0], array)


def test_a_painted_mask_joins_the_seam_mask(tiny_model, source_path, tmp_path):
    path, array = source_path
    mask = np.zeros((24, 32), dtype=np.uint8)
    mask[10:20, 20:30] = 255  # a square inside the old image
    mask_path = tmp_path / "mask.png"
    Image.fromarray(mask).save(mask_path)
    result = np.asarray(outpainted(tiny_model, path, mask=str(mask_path)).images[0], dtype=np.int16)
    old = result[8:, 16:48]
    assert np.abs(old[10:20, 20:30] - array[10:20, 20:30]).mean() > 5  # repainted
    assert np.abs(old[8:10, 8:18] - array[8:10, 8:18]).max() <= 1  # kept (below the top seam)


def test_the_outpaint_survives_the_png_record(tiny_model, source_path):
    path, _ = source_path
    result = outpainted(tiny_model, path)
    name, model_hash, extra = split_record(result.metadata)
    data = encode_png(result.images[0], result.request, model_name=name, model_hash=model_hash, extra=extra)
    from io import BytesIO

    with Image.open(BytesIO(data)) as image:
        chunks = dict(image.text)
    read = metadata_from_chunks(chunks, (56, 32))
    assert read.request is not None and read.request.outpaint == Outpaint(left=16, right=8, top=8)
    assert read.request == result.request.replace(batch_size=1)
