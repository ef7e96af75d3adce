"""A1111's "Tiling: True" written only when on, and read back from A1111 text and our own PNGs."""

from __future__ import annotations

import io

from PIL import Image

from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import encode_png, metadata_from_chunks, read_metadata
from ldm_studio.gallery.parameters import format_parameters

A1111_TEXT = (
    "seamless stone wall texture\n"
    "Negative prompt: blurry\n"
    "Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 1234, Size: 512x512, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Tiling: True, Version: v1.10.1"
)


def request(**changes) -> GenerationRequest:
    return GenerationRequest("wall", seed=1, width=512, height=512, **changes)


def test_tiling_is_written_the_a1111_way_only_when_on():
    on = format_parameters(request(tiling=True), model_name="m", model_hash="abc")
    off = format_parameters(request(), model_name="m", model_hash="abc")
    assert ", Tiling: True" in on.splitlines()[-1]
    assert "Tiling" not in off


def test_an_a1111_image_with_tiling_is_reused_with_tiling():
    metadata = metadata_from_chunks({"parameters": A1111_TEXT}, (512, 512))
    assert metadata.source == "a1111" and metadata.tiling is True
    assert metadata.to_request().tiling is True
    plain = metadata_from_chunks({"parameters": A1111_TEXT.replace(", Tiling: True", "")}, (512, 512))
    assert plain.tiling is False
    # a reuse of an image made without it turns a tiling draft off: the image is reproduced as made
    assert plain.reuse(request(tiling=True), "all").tiling is False


def test_our_png_keeps_tiling_in_both_chunks(tmp_path):
    data = encode_png(Image.new("RGB", (8, 8)), request(tiling=True), model_name="m", model_hash="abc")
    path = tmp_path / "tile.png"
    path.write_bytes(data)
    metadata = read_metadata(path)
    assert metadata.request is not None and metadata.request.tiling is True
    assert metadata.tiling is True
    assert "Tiling: True" in Image.open(io.BytesIO(data)).info["parameters"]
