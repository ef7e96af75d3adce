"""``ldm-studio generate --tiny-decoder PATH``: the final image decoded by a tiny autoencoder."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from ldm_studio.cli import main
from tests.engine.test_tiny_decoding import original_decoder_file, tiny_for_the_tiny_model


def run(tiny_sd_folder, out, *extra):
    args = ["generate", "--model", str(tiny_sd_folder), "--prompt", "a red square", "--seed", "7"]
    return main([*args, "--steps", "2", "--out", str(out), *extra])


def test_the_flag_decodes_with_the_tiny_decoder_and_says_so(tiny_sd_folder, tmp_path, capsys):
    decoder = original_decoder_file(tiny_for_the_tiny_model(), tmp_path / "taesd_decoder.pth")
    assert run(tiny_sd_folder, tmp_path / "draft", "--tiny-decoder", str(decoder)) == 0
    (draft_path,) = capsys.readouterr().out.split()
    assert run(tiny_sd_folder, tmp_path / "full") == 0
    (full_path,) = capsys.readouterr().out.split()
    with Image.open(draft_path) as draft, Image.open(full_path) as full:
        assert draft.size == full.size == (16, 16)
        parameters, ours = draft.info["parameters"], json.loads(draft.info["ldm-studio"])
        assert "VAE:" not in full.info["parameters"]
        difference = np.abs(np.asarray(draft, dtype=np.float32) - np.asarray(full, dtype=np.float32))
    assert ", VAE: taesd_decoder" in parameters
    assert ours["request"]["decoder"] == str(decoder)
    assert ours["extra"]["draft_decoder"]["layout"] == "original"
    assert difference.mean() > 1.0  # same seed and latents, another decoder


def test_a_bad_tiny_decoder_is_one_sentence(tiny_sd_folder, tmp_path, capsys):
    assert run(tiny_sd_folder, tmp_path, "--tiny-decoder", str(tmp_path / "none.pth")) == 2
    assert "does not exist" in capsys.readouterr().err
    encoder_only = tmp_path / "taesd_encoder.pth"
    model = tiny_for_the_tiny_model()
    torch.save(
        {k.split(".", 2)[2]: v for k, v in model.state_dict().items() if k.startswith("encoder")},
        encoder_only,
    )
    assert run(tiny_sd_folder, tmp_path, "--tiny-decoder", str(encoder_only)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "only an encoder" in err[0]
    not_taesd = tmp_path / "model.pt"
    torch.save({"weird.weight": torch.zeros(2)}, not_taesd)
    assert run(tiny_sd_folder, tmp_path, "--tiny-decoder", str(not_taesd)) == 2
    assert "not a tiny autoencoder" in capsys.readouterr().err
