"""The emoji data command on a tiny fake npm package layout (no npm, no network)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ldm_studio.training import emoji_data
from ldm_studio.training.image_folder import read_captioned_folder, read_holdout, split_holdout


def png_bytes(colour: tuple[int, int, int, int]) -> bytes:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    image.paste(Image.new("RGBA", (32, 32), colour), (16, 16))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def write_tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


DATASOURCE = [
    {"name": "HEAVY BLACK HEART", "unified": "2764-FE0F", "image": "2764-fe0f.png", "short_names": ["heart"],
     "category": "Smileys & Emotion", "has_img_twitter": True, "has_img_google": True},
    {"name": "FATHER CHRISTMAS", "unified": "1F385", "image": "1f385.png", "short_names": ["santa"],
     "category": "People & Body", "has_img_twitter": True, "has_img_google": True,
     "skin_variations": {"1F3FF": {"unified": "1F385-1F3FF", "image": "1f385-1f3ff.png",
                                   "has_img_twitter": True, "has_img_google": True}}},
    {"name": "EGYPT FLAG", "unified": "1F1EA-1F1EC", "image": "1f1ea-1f1ec.png", "short_names": ["flag-eg"],
     "category": "Flags", "has_img_twitter": True, "has_img_google": False},
    {"name": "EMOJI MODIFIER FITZPATRICK TYPE-6", "unified": "1F3FF", "image": "1f3ff.png",
     "short_names": ["skin-tone-6"], "category": "Component", "has_img_twitter": True,
     "has_img_google": True},
]  # fmt: skip
EMOJIBASE = [
    {"label": "red heart", "hexcode": "2764", "tags": ["heart", "love"]},
    {"label": "Santa Claus", "hexcode": "1F385", "tags": ["christmas", "santa"],
     "skins": [{"label": "Santa Claus: dark skin tone", "hexcode": "1F385-1F3FF", "tags": ["christmas"]}]},
]  # fmt: skip


@pytest.fixture
def fake_tarballs(tmp_path: Path) -> dict[str, Path]:
    cache = tmp_path / "npm"
    cache.mkdir()
    tarballs = {}
    for package, folder in (("emoji-datasource-twitter", "twitter"), ("emoji-datasource-google", "google")):
        files = {
            "package/emoji.json": json.dumps(DATASOURCE).encode(),
            "package/README.md": b"* Twitter images are available under CC-BY 4.0.\n"
            b"* Android/Google/Noto images, are available under the Apache License 2.0.\n",
        }
        for index, name in enumerate(("2764-fe0f.png", "1f385.png", "1f385-1f3ff.png", "1f1ea-1f1ec.png")):
            files[f"package/img/{folder}/64/{name}"] = png_bytes((200, 30 * index, 40, 255))
        version = emoji_data.PACKAGE_VERSIONS[package]
        tarballs[package] = write_tarball(cache / f"{package}-{version}.tgz", files)
    version = emoji_data.PACKAGE_VERSIONS["emojibase-data"]
    tarballs["emojibase-data"] = write_tarball(
        cache / f"emojibase-data-{version}.tgz", {"package/en/data.json": json.dumps(EMOJIBASE).encode()}
    )
    return tarballs


def test_writes_captioned_folder_on_white(fake_tarballs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "emoji"
    count = emoji_data.write_emoji_folder(fake_tarballs, out, size=32, holdout_fraction=0.0)
    assert count == 4  # heart and santa in two styles; no flags, components or skin tones
    items = {str(item.path.relative_to(out)): item for item in read_captioned_folder(out)}
    assert set(items) == {
        "twemoji/2764-fe0f.png",
        "twemoji/1f385.png",
        "noto/2764-fe0f.png",
        "noto/1f385.png",
    }
    heart = items["noto/2764-fe0f.png"].captions
    assert heart[:3] == ("heavy black heart", "red heart", "heart") and "heart, love" in heart
    assert "santa claus" in items["twemoji/1f385.png"].captions
    pixels = np.asarray(Image.open(out / "noto/1f385.png"))
    assert pixels.shape == (32, 32, 3) and (pixels[0, 0] == 255).all()  # transparency became white
    attribution = (out / "ATTRIBUTION.md").read_text()
    assert "CC-BY 4.0" in attribution and "Apache License 2.0" in attribution
    assert read_holdout(out) == set()


def test_skin_tones_are_named_and_held_out_with_their_emoji(
    fake_tarballs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "emoji"
    emoji_data.write_emoji_folder(fake_tarballs, out, include_skin_tones=True, holdout_fraction=1.0)
    items = {str(item.path.relative_to(out)): item for item in read_captioned_folder(out)}
    assert "father christmas, dark skin tone" in items["noto/1f385-1f3ff.png"].captions
    assert len(read_holdout(out)) == 6  # every emoji, so every variant and style too


def test_fetch_reuses_cached_tarball_and_explains_missing_npm(
    fake_tarballs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = fake_tarballs["emojibase-data"]
    monkeypatch.setattr(emoji_data.shutil, "which", lambda name: None)
    assert emoji_data.fetch_package("emojibase-data", "17.0.0", cached.parent) == cached
    with pytest.raises(emoji_data.NpmMissingError, match="npm is needed"):
        emoji_data.fetch_package("emojibase-data", "17.0.0", tmp_path / "empty")


def test_data_cli_reports_missing_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from ldm_studio.cli import main

    monkeypatch.setattr(emoji_data.shutil, "which", lambda name: None)
    status = main(["data", "emoji", "--out", str(tmp_path / "out"), "--package-cache", str(tmp_path / "c")])
    assert status == 1
    assert "npm is needed" in capsys.readouterr().err


def test_txt_captions_and_holdout_split(tmp_path: Path) -> None:
    for index in range(10):
        Image.new("RGB", (8, 8), (index * 20, 0, 0)).save(tmp_path / f"img{index}.png")
        (tmp_path / f"img{index}.txt").write_text(f"red {index}\n\nshade {index}\n")
    items = read_captioned_folder(tmp_path)
    assert items[3].captions == ("red 3", "shade 3")
    train, held = split_holdout(items, tmp_path, 0.2)
    assert len(held) == 2 and len(train) == 8 and not {i.path for i in held} & {i.path for i in train}
