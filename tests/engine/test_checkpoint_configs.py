"""The shipped config folders and tokenizer match the public Stable Diffusion architectures."""

from __future__ import annotations

import json

import pytest
import torch

from ldm_studio.engine.checkpoints.configs import copy_family_folder
from ldm_studio.paths import resource

FAMILY_FOLDERS = ("sd1", "sd2", "sd2-v", "sdxl")
SD1_UNET, SD2_UNET, SDXL_UNET = 859_520_964, 865_910_724, 2_567_463_684
SD_VAE, CLIP_L, OPEN_CLIP_H_23, OPEN_CLIP_BIG_G = 83_653_863, 123_060_480, 340_387_840, 694_659_840
EXPECTED_PARAMETERS = {
    "sd1": {"unet": SD1_UNET, "vae": SD_VAE, "text_encoder": CLIP_L},
    "sd2": {"unet": SD2_UNET, "vae": SD_VAE, "text_encoder": OPEN_CLIP_H_23},
    "sd2-v": {"unet": SD2_UNET, "vae": SD_VAE, "text_encoder": OPEN_CLIP_H_23},
    "sdxl": {"unet": SDXL_UNET, "vae": SD_VAE, "text_encoder": CLIP_L, "text_encoder_2": OPEN_CLIP_BIG_G},
}


def read(folder: str, *parts: str) -> dict:
    return json.loads(resource("configs", folder, *parts).read_text(encoding="utf-8"))


def meta_parameter_count(folder: str, component: str) -> int:
    """Instantiate from the shipped config on the meta device: the count costs no memory."""
    import diffusers
    import transformers

    library, class_name = read(folder, "model_index.json")[component]
    model_class = getattr(diffusers if library == "diffusers" else transformers, class_name)
    with torch.device("meta"):
        if library == "diffusers":
            model = model_class.from_config(model_class.load_config(resource("configs", folder, component)))
        else:
            config = transformers.CLIPTextConfig.from_pretrained(resource("configs", folder, component))
            model = model_class(config)
    assert all(p.device.type == "meta" for p in model.parameters())
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("folder", FAMILY_FOLDERS)
def test_parameter_counts_match_the_public_architectures(folder):
    counts = {component: meta_parameter_count(folder, component) for component in EXPECTED_PARAMETERS[folder]}
    assert counts == EXPECTED_PARAMETERS[folder]


@pytest.mark.parametrize("folder", FAMILY_FOLDERS)
def test_model_index_lists_only_shipped_components(folder):
    index = read(folder, "model_index.json")
    root = resource("configs", folder)
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list):
            continue
        if spec[0] is None:
            assert not (root / name).exists()
        else:
            assert (root / name).is_dir(), f"{folder} lists {name} but does not ship it"
    # Listing a feature extractor makes diffusers look for preprocessor_config.json
    assert index["feature_extractor"] == [None, None]
    assert not list(root.rglob("*.safetensors")) and not list(root.rglob("*.bin"))


SAMPLERS = (
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "DDIMScheduler",
    "PNDMScheduler",
    "UniPCMultistepScheduler",
    "LMSDiscreteScheduler",
    "HeunDiscreteScheduler",
    "KDPM2DiscreteScheduler",
    "DDPMScheduler",
    "DEISMultistepScheduler",
)


@pytest.mark.parametrize("folder", FAMILY_FOLDERS)
def test_every_schedule_setting_survives_a_sampler_switch(folder):
    """A key left unset is filled by each class's own default (PNDM "leading", Euler "linspace")."""
    import diffusers

    shipped = read(folder, "scheduler", "scheduler_config.json")
    settings = {key for key in shipped if not key.startswith("_")}
    first = getattr(diffusers, shipped["_class_name"]).from_config(shipped)
    for name in SAMPLERS:
        switched = getattr(diffusers, name).from_config(first.config)
        assert not settings & set(switched.config.get("_use_default_values", [])), name
        for key in ("timestep_spacing", "steps_offset", "prediction_type", "beta_schedule", "beta_end"):
            assert switched.config[key] == shipped[key], (name, key)
        if "clip_sample" in switched.config:  # DDIM and DDPM default to clipping
            assert switched.config["clip_sample"] is False


def test_prediction_types_and_sizes_per_family():
    assert read("sd1", "scheduler", "scheduler_config.json")["prediction_type"] == "epsilon"
    assert read("sd2", "scheduler", "scheduler_config.json")["prediction_type"] == "epsilon"
    assert read("sd2-v", "scheduler", "scheduler_config.json")["prediction_type"] == "v_prediction"
    assert read("sdxl", "scheduler", "scheduler_config.json")["prediction_type"] == "epsilon"
    sizes = {folder: read(folder, "unet", "config.json")["sample_size"] * 8 for folder in FAMILY_FOLDERS}
    assert sizes == {"sd1": 512, "sd2": 512, "sd2-v": 768, "sdxl": 1024}


def test_sdxl_vae_scaling_and_fp32_upcast():
    vae = read("sdxl", "vae", "config.json")
    assert vae["scaling_factor"] == 0.13025
    assert vae["force_upcast"] is True
    assert read("sd1", "vae", "config.json")["scaling_factor"] == 0.18215


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory) -> dict[str, object]:
    from transformers import CLIPTokenizer

    loaded = {}
    for folder in ("sd1", "sd2", "sdxl"):
        copy = copy_family_folder(resource("configs", folder), tmp_path_factory.mktemp(folder) / "config")
        for tokenizer in sorted(p.name for p in copy.glob("tokenizer*")):
            loaded[f"{folder}/{tokenizer}"] = CLIPTokenizer.from_pretrained(
                copy / tokenizer, local_files_only=True
            )
    return loaded


def test_tokenizers_encode_like_clip(tokenizers):
    assert set(tokenizers) == {"sd1/tokenizer", "sd2/tokenizer", "sdxl/tokenizer", "sdxl/tokenizer_2"}
    for name, tokenizer in tokenizers.items():
        assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407], name
        assert len(tokenizer) == 49408 and tokenizer.model_max_length == 77
    # merges are applied: "photograph" is one token, upper case and spacing are normalised
    assert (
        tokenizers["sd1/tokenizer"]("A  PHOTOGRAPH").input_ids[1:-1]
        == tokenizers["sd1/tokenizer"]("a photograph").input_ids[1:-1]
    )
    assert len(tokenizers["sd1/tokenizer"]("photograph").input_ids) == 3


def test_padding_tokens_per_family(tokenizers):
    def padded(name: str) -> list[int]:
        return tokenizers[name]("a cat", padding="max_length", max_length=77).input_ids

    assert padded("sd1/tokenizer")[4:] == [49407] * 73  # SD 1.x pads with <|endoftext|>
    assert padded("sdxl/tokenizer")[4:] == [49407] * 73
    assert padded("sd2/tokenizer")[:4] == [49406, 320, 2368, 49407]
    assert padded("sd2/tokenizer")[4:] == [0] * 73  # OpenCLIP pads with zeros: "!"
    assert padded("sdxl/tokenizer_2")[4:] == [0] * 73
    assert tokenizers["sd2/tokenizer"].pad_token == "!"


def test_tokenizer_vocabulary_ships_with_its_licence():
    folder = resource("tokenizers", "clip")
    assert "MIT License" in (folder / "LICENSE").read_text(encoding="utf-8")
    assert "OpenAI" in (folder / "LICENSE").read_text(encoding="utf-8")
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == 49408 and vocab["<|startoftext|>"] == 49406 and vocab["<|endoftext|>"] == 49407
    merges = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0].startswith("#version") and len(merges) == 1 + 49408 - 512 - 2


@pytest.mark.parametrize("folder", FAMILY_FOLDERS)
def test_full_size_checkpoint_layouts_rebuild_the_shipped_configs(folder, tmp_path):
    """A real-size original-layout key table (shapes only, on the meta device) is recognised, its
    inferred config equals the shipped one, and diffusers' converter finds every weight in it."""
    from types import SimpleNamespace

    import diffusers
    import transformers

    from ldm_studio.engine.checkpoints.configs import write_config_folder
    from ldm_studio.engine.checkpoints.coverage import verify_coverage
    from ldm_studio.engine.checkpoints.inspect import describe_tensors
    from ldm_studio.engine.checkpoints.tensors import TensorTable
    from tests.engine.checkpoint_factory import FAMILY, original_state_dict

    index = read(folder, "model_index.json")
    components = {}
    with torch.device("meta"):
        for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
            if name in index:
                library, class_name = index[name]
                model_class = getattr(diffusers if library == "diffusers" else transformers, class_name)
                config = resource("configs", folder, name)
                if library == "diffusers":
                    components[name] = model_class.from_config(model_class.load_config(config))
                else:
                    components[name] = model_class(transformers.CLIPTextConfig.from_pretrained(config))
    scheduler_config = read(folder, "scheduler", "scheduler_config.json")
    scheduler = getattr(diffusers, scheduler_config["_class_name"]).from_config(scheduler_config)
    state = original_state_dict(SimpleNamespace(**components, scheduler=scheduler), folder)
    table = TensorTable({k: tuple(v.shape) for k, v in state.items()}, {k: "F16" for k in state})
    path = tmp_path / ("v2-1_768-ema-pruned.safetensors" if folder == "sd2-v" else "model-512.safetensors")
    path.touch()

    info = describe_tensors(path, table, "safetensors")
    assert (info.family, info.loadable) == (FAMILY[folder], True), info.reason
    assert info.parameters["unet"] == EXPECTED_PARAMETERS[folder]["unet"]
    assert info.parameters["vae"] == SD_VAE
    written = write_config_folder(info, tmp_path / "config", prediction_type=info.prediction_type)
    for component in components:
        shipped = json.loads((resource("configs", folder) / component / "config.json").read_text())
        assert json.loads((written / component / "config.json").read_text()) == shipped, component
    assert json.loads((written / "scheduler" / "scheduler_config.json").read_text()) == scheduler_config
    verify_coverage(table, written, path.name, ("unet", "vae"))
