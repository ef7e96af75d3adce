"""Shipped training configs parse; the train command runs from a TOML config and resumes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldm_studio.paths import resource
from ldm_studio.training.config import LdmConfig, VaeConfig, from_dict, load_config, to_toml
from ldm_studio.training.run_log import read_loss_log
from tests.training.tiny_configs import tiny_vae_config


def test_shipped_configs_parse_and_round_trip(tmp_path: Path) -> None:
    vae = load_config(VaeConfig, resource("training", "emoji_vae.toml"))
    ldm = load_config(LdmConfig, resource("training", "emoji_ldm.toml"))
    assert vae.resolution == 32 and vae.run.batch_size == 32
    assert ldm.prediction_type == "v_prediction" and "red heart" in ldm.sample_prompts
    for config, cls in ((vae, VaeConfig), (ldm, LdmConfig)):
        path = tmp_path / "round_trip.toml"
        path.write_text(to_toml(config))
        assert load_config(cls, path) == config


def test_unknown_setting_is_an_error() -> None:
    with pytest.raises(ValueError, match="learning_rat"):
        from_dict(VaeConfig, {"optim": {"learning_rat": 1.0}})


def test_train_vae_command_stops_resumes_and_refuses_to_overwrite(
    shapes_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ldm_studio.cli import main

    config = tmp_path / "vae.toml"
    config.write_text(to_toml(tiny_vae_config(4)))
    out = tmp_path / "run"
    args = ["train", "vae", "--data", str(shapes_folder), "--out", str(out), "--config", str(config)]
    assert main(args) == 0
    assert "held-out PSNR" in capsys.readouterr().out
    assert [row["step"] for row in read_loss_log(out / "loss.csv")] == ["1", "2", "3", "4"]
    assert main(args) == 1
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "ldm", "--data", str(shapes_folder), "--vae", str(tmp_path), "--out",
                 str(tmp_path / "ldm")]) == 1  # fmt: skip
    assert "no trained autoencoder" in capsys.readouterr().err
