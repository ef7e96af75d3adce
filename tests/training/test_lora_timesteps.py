"""kohya's min_timestep / max_timestep: a LoRA trained on part of the noise range only."""

import dataclasses
import json

import pytest
import torch

from ldm_studio.cli import build_parser
from ldm_studio.cli.train import lora_config
from ldm_studio.training.lora_data import CaptionRules
from ldm_studio.training.lora_step import draw_batch, timestep_range
from ldm_studio.training.lora_training import LoraTrainingConfig, run_metadata


def tiny_cache(images: int = 6) -> dict:
    return {
        "bucket_members": [list(range(images))],
        "bucket_sizes": [(32, 32)],
        "latent_mean": [torch.zeros(4, 4, 4) for _ in range(images)],
        "latent_std": [torch.ones(4, 4, 4) for _ in range(images)],
        "captions": [[f"emoji {i}"] for i in range(images)],
        "original_sizes": [(32, 32)] * images,
        "crop_top_left": [(0, 0)] * images,
    }


def drawn_timesteps(config: LoraTrainingConfig, steps: int = 40) -> torch.Tensor:
    cache = tiny_cache()
    return torch.cat(
        [draw_batch(cache, config, CaptionRules(), step, 1000)["timesteps"] for step in range(steps)]
    )


def test_every_timestep_by_default_and_only_the_range_when_bounded():
    config = LoraTrainingConfig()
    config = dataclasses.replace(config, run=dataclasses.replace(config.run, batch_size=8))
    everything = drawn_timesteps(config)
    assert everything.max() > 900 and everything.min() < 100
    bounded = drawn_timesteps(dataclasses.replace(config, min_timestep=100, max_timestep=700))
    assert bounded.min() >= 100 and bounded.max() < 700
    assert bounded.max() > 600  # the range is used, not a corner of it


def test_a_range_that_leaves_nothing_is_refused_in_a_sentence():
    with pytest.raises(ValueError, match="min_timestep 800 must be below max_timestep 700"):
        timestep_range(LoraTrainingConfig(min_timestep=800, max_timestep=700), 1000)
    assert timestep_range(LoraTrainingConfig(max_timestep=5000), 1000) == (0, 1000)


def test_the_cli_sets_the_range_and_the_file_records_it(tmp_path):
    base = tmp_path / "base.safetensors"
    base.write_bytes(b"weights")
    args = build_parser().parse_args(
        [
            "train",
            "lora",
            "--base",
            str(base),
            "--data",
            "d",
            "--out",
            "o.safetensors",
            "--max-timestep",
            "700",
        ]
    )
    config = lora_config(args)
    assert (config.min_timestep, config.max_timestep) == (0, 700)
    cache = {**tiny_cache(), "tag_frequency": {}, "image_files": ["a.png"]}
    metadata = run_metadata(config, "sd1", "epsilon", 32, cache, 10, 1)
    assert (metadata["ss_min_timestep"], metadata["ss_max_timestep"]) == ("0", "700")


def test_a_locon_file_says_its_convolution_rank_as_kohya_does(tmp_path):
    base = tmp_path / "base.safetensors"
    base.write_bytes(b"weights")
    config = LoraTrainingConfig(
        base=base,
        data=tmp_path / "images",
        out=tmp_path / "x.safetensors",
        targets="locon",
        rank=8,
        alpha=4.0,
    )
    cache = {**tiny_cache(), "tag_frequency": {}, "image_files": ["a.png"]}
    metadata = run_metadata(config, "sd1", "epsilon", 32, cache, 10, 1)
    assert json.loads(metadata["ss_network_args"]) == {"conv_dim": "8", "conv_alpha": "4"}
    plain = run_metadata(
        dataclasses.replace(config, targets="transformer"), "sd1", "epsilon", 32, cache, 10, 1
    )
    assert "ss_network_args" not in plain
