"""Training on a tiny synthetic folder: the loss falls, resume repeats the uninterrupted run, and the
exported folder loads through the app's engine and generates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ldm_studio.training.ldm_training import train_ldm
from ldm_studio.training.run_log import read_loss_log
from ldm_studio.training.vae_training import train_vae
from tests.training.tiny_configs import tiny_ldm_config, tiny_vae_config


def losses(run_dir: Path) -> list[float]:
    return [float(row["loss"]) for row in read_loss_log(run_dir / "loss.csv")]


@pytest.fixture(scope="module")
def vae_run(shapes_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("vae_run")
    train_vae(shapes_folder, run_dir, tiny_vae_config(30))
    return run_dir


def test_vae_loss_falls_and_writes_outputs(vae_run: Path) -> None:
    curve = losses(vae_run)
    assert len(curve) == 30
    assert np.mean(curve[-5:]) < 0.5 * np.mean(curve[:5])
    metrics = json.loads((vae_run / "vae_metrics.json").read_text())
    assert metrics["images"] == 4 and 5 < metrics["psnr_db"] < 60
    assert (vae_run / "vae" / "config.json").is_file()
    assert (vae_run / "loss.png").stat().st_size > 0


def test_vae_resume_repeats_the_uninterrupted_run(shapes_folder: Path, tmp_path: Path) -> None:
    config = tiny_vae_config(6)
    train_vae(shapes_folder, tmp_path / "whole", config)
    train_vae(shapes_folder, tmp_path / "split", config, stop_at_step=3)
    assert len(losses(tmp_path / "split")) == 3
    with pytest.raises(FileExistsError):
        train_vae(shapes_folder, tmp_path / "split", config)
    train_vae(shapes_folder, tmp_path / "split", config, resume=True)
    assert losses(tmp_path / "split") == pytest.approx(losses(tmp_path / "whole"), rel=1e-5)


def test_ldm_trains_resumes_and_exports_a_loadable_model(
    shapes_folder: Path, vae_run: Path, tmp_path: Path
) -> None:
    config = tiny_ldm_config(12)
    train_ldm(shapes_folder, vae_run, tmp_path / "whole", config)
    curve = losses(tmp_path / "whole")
    assert np.mean(curve[-4:]) < np.mean(curve[:4])

    early = tmp_path / "early"
    train_ldm(shapes_folder, vae_run, tmp_path / "split", config, stop_at_step=5, export_to=early)
    assert json.loads((early / "training.json").read_text()) == {"denoiser_steps": 5}
    assert "denoiser 5 of 12 steps" in (early / "README.md").read_text()
    assert "--stop-after 5" in (early / "README.md").read_text()  # how to reproduce this early model
    model = tmp_path / "model"
    train_ldm(shapes_folder, vae_run, tmp_path / "split", config, resume=True, export_to=model)
    assert losses(tmp_path / "split") == pytest.approx(curve, rel=1e-5)

    index = json.loads((model / "model_index.json").read_text())
    assert index["text_encoder"] == ["transformers", "BertModel"]
    assert not list((model / "text_encoder").glob("*.safetensors"))
    assert {"red circle", "a square in blue"} <= set((model / "captions.txt").read_text().splitlines())
    scheduler = json.loads((model / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["prediction_type"] == "v_prediction" and scheduler["timestep_spacing"] == "trailing"
    assert "_use_default_values" not in scheduler
    assert json.loads((model / "training.json").read_text()) == {"denoiser_steps": 12}
    assert "denoiser 12 of 12 steps" in (model / "README.md").read_text()
    assert "--stop-after" not in (model / "README.md").read_text()
    (tmp_path / "split" / "quality.json").write_text(
        json.dumps({"fidelity_top5": 0.625, "denoiser_steps": 12})
    )
    from ldm_studio.cli import main

    assert (
        main(["train", "export", "--run", str(tmp_path / "split"), "--out", str(model), "--card-only"]) == 0
    )
    assert "62.5%" in (model / "README.md").read_text()
    preview = json.loads((model / "preview.json").read_text())
    assert np.asarray(preview["latent_rgb_weights"]).shape == (4, 3)

    from ldm_studio.engine.loader import load_model

    loaded = load_model(model, device="cpu", dtype="float32")
    pipe = loaded.pipe
    assert pipe.tokenizer.model_max_length == 8
    # The pipeline's prompt encoding equals what training precomputed.
    cache = torch.load(tmp_path / "split" / "cache.pt", weights_only=True)
    caption = cache["captions"][0]
    states, _ = pipe.encode_prompt([caption], "cpu", 1, False)
    assert torch.allclose(states, cache["caption_states"][1:2].float(), atol=0.03)
    image = pipe("red circle", height=16, width=16, num_inference_steps=2, output_type="np").images[0]
    assert image.shape == (16, 16, 3) and np.isfinite(image).all()


def test_folded_vae_encodes_normalised_latents(vae_run: Path) -> None:
    from diffusers import AutoencoderKL

    from ldm_studio.training.export import fold_latent_normalisation

    raw = AutoencoderKL.from_pretrained(vae_run / "vae")
    folded = AutoencoderKL.from_pretrained(vae_run / "vae")
    mean, std = torch.tensor([0.5, -1.0, 2.0, 0.0]), torch.tensor([2.0, 0.5, 1.5, 3.0])
    fold_latent_normalisation(folded, mean, std)
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        raw_posterior = raw.encode(images).latent_dist
        folded_posterior = folded.encode(images).latent_dist
        expected = (raw_posterior.mean - mean[None, :, None, None]) / std[None, :, None, None]
        assert torch.allclose(folded_posterior.mean, expected, atol=1e-5)
        assert torch.allclose(folded_posterior.std, raw_posterior.std / std[None, :, None, None], atol=1e-5)
        assert torch.allclose(
            folded.decode(expected).sample, raw.decode(raw_posterior.mean).sample, atol=1e-4
        )
