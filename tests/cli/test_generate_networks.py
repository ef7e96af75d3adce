"""``generate --lora/--embedding/--clip-skip``: the tags in the prompt, written back the A1111 way."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ldm_studio.cli import main
from ldm_studio.cli.network_options import split_lora
from ldm_studio.gallery.metadata import read_metadata
from tests.engine.lora_factory import kohya_lora, load_own_copy, save_safetensors


@pytest.fixture
def lora_file(tiny_sd_folder, tmp_path):
    model = load_own_copy(tiny_sd_folder)
    return save_safetensors(
        kohya_lora(model.pipe.unet, model.pipe.text_encoder), tmp_path / "files" / "fox_style.safetensors"
    )


def generate(tiny_sd_folder, out, *extra) -> list:
    args = ["generate", "--model", str(tiny_sd_folder), "--prompt", "a red cat", "--seed", "3"]
    args += ["--steps", "3", "--sampler", "Euler", "--out", str(out), *extra]
    assert main(args) == 0
    return sorted(out.glob("*.png"))


def test_split_lora_reads_names_weights_and_windows_paths():
    assert split_lora("fox") == ("fox", 1.0)
    assert split_lora("fox:0.5") == ("fox", 0.5)
    assert split_lora(r"C:\loras\fox.safetensors:0.7") == (r"C:\loras\fox.safetensors", 0.7)
    assert split_lora(r"C:\loras\fox.safetensors") == (r"C:\loras\fox.safetensors", 1.0)


def test_lora_by_path_changes_the_image_and_is_recorded(tiny_sd_folder, tmp_path, lora_file, capsys):
    plain = generate(tiny_sd_folder, tmp_path / "plain")
    with_lora = generate(tiny_sd_folder, tmp_path / "lora", "--lora", f"{lora_file}:0.8", "--clip-skip", "2")
    a = np.asarray(Image.open(plain[0]), dtype=np.int16)
    b = np.asarray(Image.open(with_lora[0]), dtype=np.int16)
    assert np.abs(a - b).mean() > 0.1
    meta = read_metadata(with_lora[0])
    assert meta.prompt == "a red cat <lora:fox_style:0.8>"
    assert meta.clip_skip == 2 and meta.loras[0].name == "fox_style" and len(meta.loras[0].hash) == 12
    text = meta.raw["parameters"]
    assert "Clip skip: 2" in text and 'Lora hashes: "fox_style: ' in text


def test_a_missing_lora_file_is_a_usage_error(tiny_sd_folder, tmp_path, capsys):
    missing = str(tmp_path / "no.safetensors")
    args = ["generate", "--model", str(tiny_sd_folder), "--prompt", "x", "--lora", missing]
    status = main([*args, "--out", str(tmp_path / "o")])
    assert status == 2 and "does not exist" in capsys.readouterr().err
