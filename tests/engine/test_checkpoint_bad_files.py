"""A corpus of bad files, made by mutating a tiny checkpoint: each gets a clear ModelLoadError."""

from __future__ import annotations

import json
import os
import pickle
import random
import struct
from pathlib import Path

import pytest
import torch

from ldm_studio.engine.checkpoints import convert_ckpt_to_safetensors, inspect_model, load_single_file
from ldm_studio.engine.errors import ModelLoadError
from tests.engine.checkpoint_factory import single_file


class TrainingConfig:
    """A harmless custom class: still not something weights_only will build."""

    def __init__(self) -> None:
        self.learning_rate = 1e-4


class WritesMarker:
    """Unpickling this runs code that creates a marker file: exactly what must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def header_and_data(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def with_header(header: dict, data: bytes) -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


def first_tensor(header: dict) -> str:
    return next(name for name in header if name != "__metadata__")


def make_corpus(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (bad file, a phrase its error must contain)."""
    good = single_file("sd1").read_bytes()
    good_ckpt = single_file("sd1", ".ckpt").read_bytes()
    header, data = header_and_data(single_file("sd1"))
    corpus: dict[str, tuple[bytes | None, str, str]] = {}

    def add(name: str, content: bytes, phrase: str) -> None:
        corpus[name] = (content, phrase, name)

    add("empty.safetensors", b"", "is empty")
    add("empty.ckpt", b"", "is empty")
    add("truncated.safetensors", good[: len(good) // 2], "truncated")
    add("truncated.ckpt", good_ckpt[: len(good_ckpt) // 2], "damaged or truncated")
    noise = b"\x17" + random.Random(0).randbytes(4095)  # fixed, and not starting like a pickle
    add("random.safetensors", noise, "not a valid safetensors file")
    add("random.ckpt", noise, "not a PyTorch checkpoint")
    add("huge-header.safetensors", struct.pack("<Q", 2**60) + good[8:4096], "header claims")
    add("short.safetensors", b"\x01\x02\x03", "too short")
    add("not-json.safetensors", struct.pack("<Q", 12) + b"not json at!" + b"\0" * 64, "not readable JSON")
    add("header-list.safetensors", with_header([1, 2, 3], b""), "not a table")  # type: ignore[arg-type]

    lying = json.loads(json.dumps(header))
    name = first_tensor(lying)
    start, end = lying[name]["data_offsets"]
    lying[name]["data_offsets"] = [start, end + 4]  # claims more bytes than its shape holds
    add("lying-size.safetensors", with_header(lying, data), "damaged")

    beyond = json.loads(json.dumps(header))
    last = max((n for n in beyond if n != "__metadata__"), key=lambda n: beyond[n]["data_offsets"][1])
    beyond[last]["shape"] = [beyond[last]["shape"][0] * 1000, *beyond[last]["shape"][1:]]
    size = beyond[last]["data_offsets"][1] - beyond[last]["data_offsets"][0]
    beyond[last]["data_offsets"][1] = beyond[last]["data_offsets"][0] + size * 1000
    add("offsets-beyond-end.safetensors", with_header(beyond, data), "truncated")

    wrong_shape = json.loads(json.dumps(header))
    wrong_shape[name]["shape"] = [-3]
    add("negative-shape.safetensors", with_header(wrong_shape, data), "invalid shape")
    add("pickle-named.safetensors", good_ckpt, "rename it to .ckpt")
    add("safetensors-named.ckpt", good, "rename it to .safetensors")

    written = {}
    for file_name, (content, phrase, _) in corpus.items():
        path = folder / file_name
        path.write_bytes(content or b"")
        written[file_name] = (path, phrase)
    return written


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    return make_corpus(tmp_path_factory.mktemp("bad-files"))


CORPUS_NAMES = (
    "empty.safetensors",
    "empty.ckpt",
    "truncated.safetensors",
    "truncated.ckpt",
    "random.safetensors",
    "random.ckpt",
    "huge-header.safetensors",
    "short.safetensors",
    "not-json.safetensors",
    "header-list.safetensors",
    "lying-size.safetensors",
    "offsets-beyond-end.safetensors",
    "negative-shape.safetensors",
    "pickle-named.safetensors",
    "safetensors-named.ckpt",
)


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_bad_file_gets_a_clear_error(corpus, name):
    from ldm_studio.engine.loader import load_model

    path, phrase = corpus[name]
    with pytest.raises(ModelLoadError, match=phrase):
        inspect_model(path)
    with pytest.raises(ModelLoadError, match=phrase):
        load_single_file(path, torch_dtype=torch.float32)
    with pytest.raises(ModelLoadError) as raised:  # the app's entry point
        load_model(path, device="cpu")
    assert path.name in str(raised.value)


@pytest.mark.parametrize("container", ["zip", "legacy-torch", "raw-pickle"])
def test_malicious_pickle_is_refused_without_running(tmp_path, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    payload = {"x": WritesMarker(marker), "state_dict": {"model.diffusion_model.out.2.bias": torch.zeros(4)}}
    if container == "raw-pickle":
        with path.open("wb") as stream:
            pickle.dump(payload, stream, protocol=2)
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=container == "zip")
    for attempt in (inspect_model, lambda p: load_single_file(p, torch_dtype=torch.float32)):
        with pytest.raises(ModelLoadError, match=r"refused.*(posix|os|nt)\.system"):
            attempt(path)
    with pytest.raises(ModelLoadError, match="refused"):
        convert_ckpt_to_safetensors(path, tmp_path / "evil.safetensors")
    assert not marker.exists()
    assert not (tmp_path / "evil.safetensors").exists()


def test_pickle_with_a_custom_class_is_refused(tmp_path):
    path = tmp_path / "custom.ckpt"
    torch.save({"state_dict": {}, "config": TrainingConfig()}, path)
    with pytest.raises(ModelLoadError, match="asks for .*TrainingConfig, which could run code"):
        inspect_model(path)


def test_numpy_allowance_is_only_for_scalars(tmp_path):
    """Numpy arrays need more globals (ndarray reconstruction) than scalar metadata: refused."""
    import numpy as np

    path = tmp_path / "array.ckpt"
    torch.save({"state_dict": {"a": torch.zeros(1)}, "stats": np.zeros(3)}, path)
    with pytest.raises(ModelLoadError, match="refused.*numpy"):
        inspect_model(path)


def test_folder_without_model_index(tmp_path):
    from ldm_studio.engine.loader import load_model

    (tmp_path / "unet").mkdir()
    (tmp_path / "model.safetensors").write_bytes(single_file("sd1").read_bytes())
    with pytest.raises(ModelLoadError, match="no model_index.json.*model.safetensors"):
        inspect_model(tmp_path)
    with pytest.raises(ModelLoadError, match="model_index.json"):
        load_model(tmp_path, device="cpu")


@pytest.mark.parametrize(
    ("tensors", "family", "phrase"),
    [
        (
            {"foo.bar": torch.zeros(2)},
            "unknown",
            "no Stable Diffusion layout; supported: Stable Diffusion 1.x",
        ),
        ({"lora_unet_down_blocks_0.lora_down.weight": torch.zeros(4, 8)}, "lora", "LoRA"),
        ({"emb_params": torch.zeros(2, 768)}, "embedding", "embedding"),
        ({}, "unknown", "no tensors"),
    ],
    ids=["unknown", "lora", "embedding", "empty-table"],
)
def test_unsupported_files_say_what_they_are(tmp_path, tensors, family, phrase):
    from safetensors.torch import save_file

    path = tmp_path / "thing.safetensors"
    save_file(tensors, str(path))
    info = inspect_model(path)
    assert (info.family, info.loadable) == (family, False)
    assert phrase in info.reason
    with pytest.raises(ModelLoadError, match="cannot be loaded"):
        load_single_file(path, torch_dtype=torch.float32)


def test_inpainting_checkpoint_is_recognised_and_refused(tmp_path):
    from safetensors.torch import save_file

    from tests.engine.checkpoint_factory import original_state_dict, tiny

    state = original_state_dict(tiny("sd1").pipe, "sd1")
    weight = state["model.diffusion_model.input_blocks.0.0.weight"]
    state["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(
        weight.shape[0], 9, *weight.shape[2:]
    )
    path = tmp_path / "inpaint.safetensors"
    save_file(state, str(path))
    info = inspect_model(path)
    assert info.family == "sd1" and not info.loadable
    assert "inpainting model (9 input channels)" in info.reason


def test_not_a_model_file_type(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(ModelLoadError, match="not a model file"):
        inspect_model(path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        inspect_model(tmp_path / "missing.safetensors")


def test_a_safetensors_header_length_starting_with_the_pickle_opcode_is_still_safetensors(tmp_path):
    """A header of 0x5280 bytes starts the file with 0x80, pickle's PROTO opcode (1 file in 256)."""
    import json
    import struct

    from ldm_studio.engine.checkpoints.pickles import sniff_format

    header = json.dumps({"__metadata__": {"pad": ""}}).encode()
    header += b" " * (0x5280 - len(header))
    path = tmp_path / "lora.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    assert path.read_bytes()[0] == 0x80
    assert sniff_format(path) == "safetensors"
