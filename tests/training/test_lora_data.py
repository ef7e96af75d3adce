"""Aspect-ratio buckets, caption rules and the OpenMoji folder builder (no model needed)."""

from __future__ import annotations

import io
import json
import math
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ldm_studio.training.buckets import Bucket, bucket_step, fit_to_bucket, make_buckets, nearest_bucket
from ldm_studio.training.image_folder import read_captioned_folder, read_holdout
from ldm_studio.training.lora_data import CaptionRules, tag_frequency


def test_buckets_keep_the_area_and_the_side_step() -> None:
    buckets = make_buckets(512, 64, max_aspect=2.0)
    assert Bucket(512, 512) in buckets and Bucket(384, 640) in buckets and Bucket(640, 384) in buckets
    for bucket in buckets:
        assert bucket.width % 64 == 0 and bucket.height % 64 == 0
        assert 0.75 * 512 * 512 <= bucket.width * bucket.height <= 512 * 512
        assert max(bucket.aspect, 1 / bucket.aspect) <= 2.0
    assert {Bucket(b.height, b.width) for b in buckets} == set(buckets)  # portrait for every landscape


def test_bucket_step_follows_the_model() -> None:
    assert bucket_step(512, vae_factor=8, unet_factor=8) == 64  # SD: 64 px, 8 latent pixels
    assert bucket_step(32, vae_factor=4, unet_factor=2) == 32  # the emoji model: only 32x32
    assert bucket_step(32, vae_factor=2, unet_factor=4) == 16


def test_images_go_to_the_nearest_aspect_and_are_cropped_in_the_middle() -> None:
    buckets = make_buckets(512, 64)
    assert nearest_bucket(1920, 1080, buckets).aspect == pytest.approx(
        min((b.aspect for b in buckets), key=lambda a: abs(math.log(a) - math.log(16 / 9)))
    )
    assert nearest_bucket(1000, 1000, buckets) == Bucket(512, 512)
    # a wide image with a red middle third and blue ends, fitted into a square: the middle survives
    pixels = np.zeros((100, 300, 3), np.uint8)
    pixels[:, :100] = pixels[:, 200:] = (0, 0, 255)
    pixels[:, 100:200] = (255, 0, 0)
    fitted = np.asarray(fit_to_bucket(Image.fromarray(pixels), Bucket(64, 64)))
    assert fitted.shape == (64, 64, 3)
    assert (fitted[:, 4:60, 0] > 200).all() and (fitted[:, 4:60, 2] < 60).all()


def test_caption_rules_trigger_shuffle_and_keep() -> None:
    assert CaptionRules(trigger="zq").apply("cat, cute") == "zq, cat, cute"
    assert CaptionRules(trigger="zq").apply("") == "zq"
    rules = CaptionRules(shuffle_tags=True, keep_tags=1)
    caption = "portrait, " + ", ".join(f"tag{i}" for i in range(8))
    orders = {rules.apply(caption, random.Random(seed)) for seed in range(20)}
    assert len(orders) > 5
    for text in orders:
        tags = text.split(", ")
        assert tags[0] == "portrait" and sorted(tags[1:]) == sorted(f"tag{i}" for i in range(8))
    assert rules.apply(caption) == caption  # no generator: the caption as written (text caching)


def test_tag_frequency_counts_over_all_captions(tmp_path: Path) -> None:
    for name, text in (("a", "cat, cute\nfluffy cat"), ("b", "cat, dog")):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{name}.png")
        (tmp_path / f"{name}.txt").write_text(text)
    assert tag_frequency(read_captioned_folder(tmp_path)) == {"cat": 2, "cute": 1, "fluffy cat": 1, "dog": 1}


def test_openmoji_folder_has_base_emoji_with_name_and_tag_captions(tmp_path: Path) -> None:
    from ldm_studio.training import openmoji_data

    table = (
        "emoji,hexcode,group,subgroups,annotation,tags,skintone\n"
        '😀,1F600,smileys-emotion,face-smiling,grinning face,"face, grin, happy",\n'
        "👶🏽,1F476-1F3FD,people-body,person,baby: medium skin tone,,3\n"
        "🇪🇬,1F1EA-1F1EC,flags,country-flag,flag: Egypt,,\n"
        "❤️,2764-FE0F,smileys-emotion,heart,red heart,love,\n"
    )
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 72 72">'
        b'<circle cx="36" cy="36" r="30" fill="#FCEA2B"/></svg>'
    )
    files = {"package/data/openmoji.csv": table.encode()}
    for code in ("1F600", "1F476-1F3FD", "1F1EA-1F1EC", "2764-FE0F"):
        files[f"package/color/svg/{code}.svg"] = svg
    tarball = tmp_path / "openmoji-17.0.0.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    out = tmp_path / "openmoji"
    assert openmoji_data.write_openmoji_folder(tarball, out, size=32, holdout_fraction=0.5) == 2
    records = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["text"] for r in records] == [["grinning face", "face, grin, happy"], ["red heart", "love"]]
    assert {r["licence"] for r in records} == {"CC-BY-SA-4.0"}
    image = np.asarray(Image.open(out / records[0]["file_name"]))
    assert (
        image.shape == (32, 32, 3)
        and tuple(image[16, 16]) == (252, 234, 43)
        and tuple(image[0, 0]) == (255,) * 3
    )
    held = read_holdout(out)
    assert held <= {out / r["file_name"] for r in records}
    assert "CC BY-SA 4.0" in (out / "ATTRIBUTION.md").read_text()


def test_the_openmoji_recipe_parses_and_round_trips(tmp_path: Path) -> None:
    from ldm_studio.paths import resource
    from ldm_studio.training.config import load_config, to_toml
    from ldm_studio.training.lora_training import LoraTrainingConfig

    recipe = load_config(LoraTrainingConfig, resource("training", "emoji_openmoji_lora.toml"))
    assert recipe.resolution == 32 and recipe.run.batch_size == 64 and not recipe.text_encoder
    assert recipe.run.mixed_precision == "auto" and recipe.optim.betas == (0.9, 0.999)
    # keys the recipe leaves out keep the LoRA defaults, not RunConfig()'s
    partial = tmp_path / "partial.toml"
    partial.write_text("[run]\nmax_steps = 5\n")
    assert load_config(LoraTrainingConfig, partial).run.batch_size == LoraTrainingConfig().run.batch_size == 1
    copy = tmp_path / "copy.toml"
    copy.write_text(to_toml(LoraTrainingConfig(base=tmp_path, out=tmp_path / "x.safetensors", rank=3)))
    loaded = load_config(LoraTrainingConfig, copy)
    assert loaded.base == tmp_path and loaded.rank == 3 and loaded.data is None


def test_folder_summary_counts_images_captions_and_buckets(tmp_path: Path) -> None:
    from ldm_studio.training.lora_data import summarise_folder
    from tests.training.lora_helpers import SIZES, write_odd_folder

    folder = write_odd_folder(tmp_path / "odd")
    Image.new("RGB", (64, 64)).save(folder / "uncaptioned.png")
    summary = summarise_folder(folder, resolution=64, step=16)
    assert (summary.images, summary.captioned) == (len(SIZES) + 1, len(SIZES))
    assert sum(summary.buckets.values()) == summary.images
    assert summary.buckets["64x64"] == 3  # the square images
    assert {"80x48", "48x80"} <= set(summary.buckets)  # 64x24 and 24x64 land in the widest buckets
