"""``ldm-studio info`` and ``ldm-studio models``: describe files without loading, list the library."""

from __future__ import annotations

import hashlib
import json
import shutil

from ldm_studio.cli import main
from ldm_studio.paths import user_dirs
from tests.engine.checkpoint_factory import single_file, tiny


def test_info_describes_a_loadable_checkpoint(capsys):
    path = single_file("sd2-v")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Family:      Stable Diffusion 2.x (sd2)" in out
    assert "Prediction:  v_prediction (from a hint in the file name)" in out
    assert f"Hash:        {hashlib.sha256(path.read_bytes()).hexdigest()[:10]} (AutoV2)" in out
    assert "Memory:      ~" in out and "in fp32" in out
    assert "Native size: 768 px" in out
    assert "Loadable:    yes" in out


def test_info_json_for_a_folder(capsys):
    assert main(["info", str(tiny("sdxl").folder), "--json", "--no-hash"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["family"], data["file_type"], data["loadable"]) == ("sdxl", "diffusers", True)
    assert data["short_hash"] == "" and data["memory_bytes_fp32"] > data["memory_bytes_fp16"] > 0
    assert data["unet"]["block_out_channels"] == [32, 64, 64]


def test_info_exits_2_with_the_reason(tmp_path, capsys):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\xff" * 64)
    assert main(["info", str(broken)]) == 2
    assert "not a valid safetensors file" in capsys.readouterr().err

    import torch
    from safetensors.torch import save_file

    lora = tmp_path / "style.safetensors"
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)}, str(lora))
    assert main(["info", str(lora), "--no-hash"]) == 2
    captured = capsys.readouterr()
    assert "Family:      LoRA (lora)" in captured.out
    assert "cannot load style.safetensors: it is a LoRA" in captured.err


def test_info_remembers_the_prediction_type(tmp_path, capsys):
    path = tmp_path / "model.safetensors"
    shutil.copyfile(single_file("sd2"), path)
    assert main(["info", str(path), "--no-hash", "--set-prediction", "epsilon"]) == 0
    assert "Prediction:  epsilon (from your setting for this model)" in capsys.readouterr().out
    assert (user_dirs().config / "model_settings.json").is_file()
    assert main(["info", str(path), "--no-hash", "--set-prediction", "auto"]) == 0
    assert "Prediction:  v_prediction (from the SD 2.x default" in capsys.readouterr().out


def test_info_converts_a_ckpt(tmp_path, capsys):
    ckpt = tmp_path / "old.ckpt"
    shutil.copyfile(single_file("sd1", ".ckpt", numpy_metadata=True), ckpt)
    assert main(["info", str(ckpt), "--no-hash", "--convert"]) == 0
    assert f"wrote {tmp_path / 'old.safetensors'}" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "old.safetensors"), "--no-hash"]) == 0
    assert main(["info", str(tmp_path / "old.safetensors"), "--convert"]) == 1
    assert "not a pickled checkpoint" in capsys.readouterr().err


def test_models_lists_the_library(tmp_path, capsys):
    dirs = user_dirs()
    dirs.models.mkdir(parents=True)
    shutil.copyfile(single_file("sd1"), dirs.models / "first.safetensors")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "bad.ckpt").write_bytes(b"junk")
    assert main(["models", "--add", str(extra)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("Folders: ") and str(extra) in lines[0]
    first = next(line for line in lines if line.startswith("first"))
    assert "sd1" in first and "safetensors" in first and first.rstrip().endswith("ok")
    digest = hashlib.sha256((dirs.models / "first.safetensors").read_bytes()).hexdigest()[:10]
    assert digest in first
    assert "cannot load: bad.ckpt is not a PyTorch checkpoint" in next(
        line for line in lines if line.startswith("bad")
    )

    assert main(["models", "--json", "--no-hash", "--remove", str(extra)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [entry["name"] for entry in listed if not entry["bundled"]] == ["first"]
    assert all(entry["loadable"] for entry in listed if entry["bundled"])  # the shipped model, if any
