"""``ldm-studio upscale``: the file a user gets, its size and the metadata it keeps and adds."""

from __future__ import annotations

import json

from PIL import Image, PngImagePlugin

from ldm_studio.cli import main
from ldm_studio.engine.catalog import UPSCALER
from ldm_studio.gallery.metadata import read_metadata
from tests.engine.test_upscalers import real_esrgan_keys, smooth_image, tiny_rrdb, write_upscaler


def _source_png(path, chunks: dict[str, str]):
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    smooth_image(24, 16).save(path, pnginfo=info)
    return path


def test_upscale_with_a_library_model_keeps_and_adds_metadata(tmp_path, capsys):
    write_upscaler(
        UPSCALER.default_folder() / "4x-Tiny.pth", real_esrgan_keys(tiny_rrdb()), wrap="params_ema"
    )
    parameters = "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 24x16, Model: tiny"
    source = _source_png(tmp_path / "cat.png", {"parameters": parameters})

    assert main(["upscale", str(source), "--upscaler", "4x-tiny", "--out", str(tmp_path / "out")]) == 0
    written = tmp_path / "out" / "cat-4x-Tiny-x4.png"
    captured = capsys.readouterr()
    assert captured.out.strip() == str(written)
    assert "tiles [" in captured.err  # the progress bar

    with Image.open(written) as result:
        assert result.size == (96, 64)
        chunks = dict(result.text)
    assert chunks["parameters"] == parameters
    assert chunks["postprocessing"] == "Postprocess upscale by: 4, Postprocess upscaler: 4x-Tiny"
    done = json.loads(chunks["ldm-studio-upscale"])
    assert (done["parent"], done["upscaler"], done["upscale"]) == (str(source.resolve()), "4x-Tiny", 4)
    assert read_metadata(written).seed == 42  # still reads back as the generation it came from


def test_upscale_records_the_parent_in_our_own_chunk(tmp_path):
    record = {"format": 1, "request": {"prompt": "a dog", "seed": 7}, "extra": {"branch_step": 3}}
    source = _source_png(tmp_path / "dog.png", {"ldm-studio": json.dumps(record)})
    out = tmp_path / "out"
    for _ in range(2):
        assert (
            main(["upscale", str(source), "--upscaler", "Lanczos", "--scale", "1.5", "--out", str(out)]) == 0
        )
    assert sorted(p.name for p in out.iterdir()) == ["dog-Lanczos-x1.5-1.png", "dog-Lanczos-x1.5.png"]

    with Image.open(out / "dog-Lanczos-x1.5.png") as result:
        assert result.size == (36, 24)
        ours = json.loads(result.text["ldm-studio"])
    assert ours["request"] == record["request"]
    assert ours["extra"] == {
        "branch_step": 3,
        "parent": str(source.resolve()),
        "upscaler": "Lanczos",
        "upscale": 1.5,
        "size": [36, 24],
    }


def test_upscale_explains_what_went_wrong(tmp_path, capsys):
    source = _source_png(tmp_path / "x.png", {})
    assert main(["upscale", str(source), "--upscaler", "nothing-here", "--out", str(tmp_path)]) == 1
    assert "no upscaler called 'nothing-here'" in capsys.readouterr().err
    assert (
        main(["upscale", str(tmp_path / "missing.png"), "--upscaler", "Lanczos", "--out", str(tmp_path)]) == 1
    )
    assert "does not exist" in capsys.readouterr().err
    assert (
        main(["upscale", str(source), "--upscaler", "Lanczos", "--scale", "0", "--out", str(tmp_path)]) == 1
    )
    assert "must be positive" in capsys.readouterr().err
