"""LoRA training on tiny models of every family: the file is kohya's format, diffusers loads it onto
the same layers (its output equals ours, and the base at weight 0), and a cancelled run resumes to
exactly the uninterrupted result."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from ldm_studio.paths import resource
from ldm_studio.training.lora_data import encode_prompts
from ldm_studio.training.lora_network import LoraNetwork, text_encoder_layers, unet_layers
from ldm_studio.training.lora_training import train_lora
from ldm_studio.training.run_log import read_loss_log
from tests.engine.checkpoint_factory import tiny
from tests.training.lora_helpers import tiny_lora_config, write_odd_folder

EMOJI_MODEL = resource("models", "emoji-ldm")


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_odd_folder(tmp_path_factory.mktemp("odd") / "odd")


def prediction(pipe, family: str, prompt: str = "zqstyle, thing 1") -> torch.Tensor:  # noqa: ANN001
    """The UNet's output for one fixed latent, timestep and prompt (text encoder LoRA included)."""
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn((1, pipe.unet.config.in_channels, 16, 16), generator=generator)
    with torch.no_grad():
        states, pooled = encode_prompts(pipe, family, [prompt])
        extra = {}
        if family == "sdxl":
            time_ids = torch.tensor([[32.0, 32.0, 0.0, 0.0, 32.0, 32.0]])
            extra["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": time_ids}
        return pipe.unet(latents, torch.tensor([500]), states, **extra).sample


def our_network_on(
    pipe, family: str, tensors: dict[str, torch.Tensor], rank: int, alpha: float, targets: str = "transformer"
) -> LoraNetwork:  # noqa: ANN001
    layers = unet_layers(pipe.unet, targets)
    if any(key.startswith("lora_te") for key in tensors):
        if family == "sdxl":
            layers += text_encoder_layers(pipe.text_encoder, "lora_te1")
            layers += text_encoder_layers(pipe.text_encoder_2, "lora_te2")
        else:
            layers += text_encoder_layers(pipe.text_encoder, "lora_te")
    network = LoraNetwork(layers, rank, alpha)
    network.load_kohya_state_dict({key: value.float() for key, value in tensors.items()})
    network.attach()
    return network


def tensor_hash(path: Path) -> str:
    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + header :]).hexdigest()


def peft_layers(module: torch.nn.Module, adapter: str) -> int:
    return sum(1 for _, layer in module.named_modules() if adapter in getattr(layer, "lora_A", {}))


def check_loads_in_diffusers(  # noqa: ANN001
    pipe, family: str, out: Path, rank: int, alpha: float, targets: str = "transformer"
) -> None:
    """diffusers puts every key on a layer, computes what our adapters compute, and weight 0 is the base."""
    from ldm_studio.engine.loader import load_model

    tensors = load_file(out)
    base = prediction(pipe, family)
    pipe.load_lora_weights(str(out.parent), weight_name=out.name, adapter_name="style")
    names = {key.rsplit(".", 2)[0] if key.endswith(".weight") else key.rsplit(".", 1)[0] for key in tensors}
    assert peft_layers(pipe.unet, "style") == sum(name.startswith("lora_unet_") for name in names)
    for encoder, prefix in (("text_encoder", "lora_te1_" if family == "sdxl" else "lora_te_"),
                            ("text_encoder_2", "lora_te2_")):  # fmt: skip
        if getattr(pipe, encoder, None) is not None:
            assert peft_layers(getattr(pipe, encoder), "style") == sum(
                name.startswith(prefix) for name in names
            )
    with_lora = prediction(pipe, family)
    assert not torch.allclose(with_lora, base, atol=1e-4)
    ours = load_model(pipe_folder(pipe), device="cpu", dtype="float32")
    network = our_network_on(ours.pipe, family, tensors, rank, alpha, targets)
    assert torch.allclose(prediction(ours.pipe, family), with_lora, atol=1e-4)
    network.set_multiplier(0.0)
    assert torch.equal(prediction(ours.pipe, family), base)
    pipe.set_adapters(["style"], [0.0])
    assert torch.allclose(prediction(pipe, family), base, atol=1e-6)


def pipe_folder(pipe) -> Path:  # noqa: ANN001
    return Path(pipe.config._name_or_path)


@pytest.mark.parametrize(("kind", "text_encoder"), [("sd1", True), ("sd2-v", False), ("sdxl", True)])
def test_kohya_file_loads_in_diffusers_onto_every_layer(
    kind: str, text_encoder: bool, odd_folder: Path, tmp_path: Path
) -> None:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    model = tiny(kind)
    out = tmp_path / "style.safetensors"
    config = tiny_lora_config(model.folder, odd_folder, out, 3, text_encoder=text_encoder)
    result = train_lora(config)
    assert result.out_file == out and result.steps_done == 3 and not result.cancelled
    with safe_open(str(out), "pt") as handle:
        metadata = handle.metadata()
        keys = set(handle.keys())
    assert metadata["ss_network_module"] == "networks.lora"
    assert (metadata["ss_network_dim"], metadata["ss_network_alpha"]) == ("4", "2.0")
    expected_version = {"sd1": "sd_v1", "sd2-v": "sd_v2_v", "sdxl": "sdxl_base_v1-0"}[kind]
    assert metadata["ss_base_model_version"] == expected_version
    assert json.loads(metadata["ss_tag_frequency"]) == {
        "odd": {"square": 6, "red": 3, "blue": 3, **{f"thing {i}": 1 for i in range(6)}}
    }
    assert metadata["ss_trigger_word"] == metadata["modelspec.trigger_phrase"] == "zqstyle"
    assert (metadata["ss_num_train_images"], metadata["ss_steps"], metadata["ss_resolution"]) == (
        "6",
        "3",
        "(32, 32)",
    )
    assert metadata["sshs_model_hash"] == tensor_hash(out)
    assert len(metadata["ss_new_sd_model_hash"]) == 64
    assert metadata["ss_sd_model_hash"] == metadata["ss_new_sd_model_hash"][:8]
    prefixes = {key.split("_", 2)[1] for key in keys}
    assert prefixes == ({"unet", "te1", "te2"} if kind == "sdxl" and text_encoder else
                        {"unet", "te"} if text_encoder else {"unet"})  # fmt: skip
    for layer in ("transformer_blocks_0_attn2_to_k", "transformer_blocks_0_ff_net_2", "proj_in"):
        assert any(key.startswith("lora_unet_") and key.endswith(f"{layer}.alpha") for key in keys), layer

    pipeline_class = StableDiffusionXLPipeline if kind == "sdxl" else StableDiffusionPipeline
    pipe = pipeline_class.from_pretrained(model.folder, local_files_only=True)
    check_loads_in_diffusers(pipe, "sdxl" if kind == "sdxl" else "sd", out, 4, 2.0)
    rows = read_loss_log(result.run_dir / "loss.csv")
    assert [row["step"] for row in rows] == ["1", "2", "3"]
    assert (result.run_dir / "loss.png").is_file()


def test_emoji_model_lora_through_the_cli_loads_in_diffusers(
    odd_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ldm_studio.cli import main
    from ldm_studio.engine.loader import load_model

    out = tmp_path / "emoji-style.safetensors"
    args = ["train", "lora", "--base", str(EMOJI_MODEL), "--data", str(odd_folder), "--out", str(out),
            "--rank", "4", "--alpha", "2", "--steps", "3", "--lr", "5e-3", "--batch", "2",
            "--trigger", "zqstyle"]  # fmt: skip
    assert main([*args, "--text-encoder"]) == 1
    assert "train the UNet only" in capsys.readouterr().err
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    metadata = safe_open(str(out), "pt").metadata()
    assert metadata["ss_base_model_version"] == "ldm_studio" and metadata["ss_resolution"] == "(32, 32)"
    loaded = load_model(EMOJI_MODEL, device="cpu", dtype="float32")
    check_loads_in_diffusers(loaded.pipe, "ldm-studio", out, 4, 2.0)


def test_cancelled_run_resumes_to_the_uninterrupted_result(odd_folder: Path, tmp_path: Path) -> None:
    model = tiny("sd1")
    # tag shuffling and caption dropout: captions are encoded in the step, from (seed, step) draws
    whole = tiny_lora_config(model.folder, odd_folder, tmp_path / "whole.safetensors", 4,
                             shuffle_tags=True, caption_dropout=0.3, run_dir=tmp_path / "whole")  # fmt: skip
    train_lora(whole)
    split = dataclasses.replace(whole, out=tmp_path / "split.safetensors", run_dir=tmp_path / "split")
    seen: list[int] = []
    result = train_lora(
        split, on_progress=lambda step, *_: seen.append(step), should_stop=lambda: len(seen) >= 2
    )
    assert result.cancelled and result.steps_done == 2 and result.out_file is None
    assert not split.out.exists() and (split.run_dir / "checkpoint.pt").is_file()
    with pytest.raises(FileExistsError):
        train_lora(split)
    result = train_lora(split, resume=True, on_progress=lambda step, *_: seen.append(step))
    assert seen == [1, 2, 3, 4] and result.out_file == split.out and not result.cancelled

    def losses(run_dir: Path) -> list[float]:
        return [float(row["loss"]) for row in read_loss_log(run_dir / "loss.csv")]

    assert losses(split.run_dir) == pytest.approx(losses(whole.run_dir), rel=1e-6)
    resumed, uninterrupted = load_file(split.out), load_file(whole.out)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[key], uninterrupted[key]) for key in resumed)
    assert any(key.endswith("lora_up.weight") and resumed[key].abs().max() > 0 for key in resumed)
