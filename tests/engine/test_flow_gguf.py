"""GGUF FLUX.1 transformers (city96's flux1-dev-Q4_0.gguf kind): the tiny FLUX of tests/flow_layouts.py
written in BFL's layout with every 2-D weight quantised by gguf's own quantiser (Q8_0, Q4_0), 1-D
tensors F32, and ae / clip_l / t5xxl beside it. The conventional tiny config has every Linear input
width a multiple of ggml's 32-wide blocks (64, 32, 128, 256, 320)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from ldm_studio.engine.checkpoints import inspect_model
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.generate import generate
from ldm_studio.engine.loader import load_model
from tests.engine.test_flow_models import pixels, request_for
from tests.flow_layouts import bfl_transformer_state, tiny_flux_set

# Measured on the tiny model (3 Euler steps, 32x32, seeds 0-5 and 42, CPU float32), mean |difference|
# in 0-255 levels against the float32 .safetensors file: Q8_0 0.10-0.12 (max 1); Q4_0 with the
# embedders F16 as city96's 0.13-0.16 (max 1); Q4_0 with every 2-D weight quantised 1.77 (max 10),
# the 64-wide img_in rows being the worst hit. Limits leave room for other CPUs' arithmetic.
Q8_MEAN_LEVELS, Q8_MAX_LEVELS = 0.5, 4
Q4_MEAN_LEVELS, Q4_MAX_LEVELS = 1.0, 8


# city96's tools/convert.py keeps these weights unquantised (and every 1-D tensor in F32)
KEPT_UNQUANTISED = ("time_in.", "txt_in.", "vector_in.", "img_in.", "guidance_in.", "final_layer.")


def write_gguf(transformer, path, quant: str = "Q8_0", dev: bool = True, kept: str = ""):
    """``kept``: the ggml type ("F16") of the weights city96 leaves unquantised; "" quantises all 2-D."""
    import gguf

    kind = gguf.GGMLQuantizationType[quant]
    writer = gguf.GGUFWriter(str(path), arch="flux")
    for name, tensor in bfl_transformer_state(transformer).items():
        if not dev and name.startswith("guidance_in."):
            continue
        array = tensor.float().numpy()
        if array.ndim == 2 and kept and name.startswith(KEPT_UNQUANTISED):
            writer.add_tensor(name, array.astype(np.float16))
        elif array.ndim == 2:
            writer.add_tensor(name, gguf.quants.quantize(array, kind), raw_dtype=kind)
        else:
            writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def flux(tmp_path_factory):
    root = tmp_path_factory.mktemp("flux-gguf")
    folder, pipe, bfl = tiny_flux_set(root)
    files = {  # Q4_0 as city96's files: the embedders and final layer F16
        "Q8_0": write_gguf(pipe.transformer, bfl.parent / "flux1-dev-Q8_0.gguf", "Q8_0"),
        "Q4_0": write_gguf(pipe.transformer, bfl.parent / "flux1-dev-Q4_0.gguf", "Q4_0", kept="F16"),
    }
    return {"folder": folder, "pipe": pipe, "bfl": bfl, **files}


def options(flux):
    return {"parts": {"tokenizers": flux["folder"]}}  # the tiny tokenizers stand in for the shipped ones


def load(flux, path, dtype="float32"):
    return load_model(path, device="cpu", dtype=dtype, file_options=options(flux))


@pytest.fixture(scope="module")
def reference_pixels(flux):
    request = request_for(guidance=3.5, negative_prompt="", steps=3)
    return pixels(generate(load(flux, flux["bfl"]), request)).astype(np.int16)


def test_inspect_describes_a_complete_set(flux):
    info = inspect_model(flux["Q4_0"])
    assert (info.family, info.file_type, info.loadable, info.reason) == ("flux", "gguf", True, "")
    assert info.weight_dtype == "Q4_0"
    assert info.notes[0].startswith("FLUX.1 dev transformer in Q4_0, kept quantised in memory")
    assert set(info.parameters) == {"transformer", "clip_l", "t5xxl", "vae"}
    # the transformer counts at its file size, the parts at 4 bytes a parameter (float32), +20 %
    parts = sum(count for name, count in info.parameters.items() if name != "transformer")
    assert info.memory_estimate(4) == int((info.file_size + 4 * parts) * 1.2)
    assert info.stored_bytes["transformer"] < 0.3 * 4 * info.parameters["transformer"]  # < 30 % of fp32


def test_schnell_and_a_missing_part_are_told_in_one_sentence(flux, tmp_path):
    lone = write_gguf(flux["pipe"].transformer, tmp_path / "flux1-schnell-Q8_0.gguf", dev=False)
    shutil.copyfile(flux["bfl"].parent / "ae.safetensors", tmp_path / "ae.safetensors")
    shutil.copyfile(flux["bfl"].parent / "clip_l.safetensors", tmp_path / "clip_l.safetensors")
    info = inspect_model(lone)
    assert not info.loadable
    assert info.reason.startswith(
        "flux1-schnell-Q8_0.gguf is a FLUX.1 schnell file without the T5-XXL text encoder"
    )
    with pytest.raises(ModelLoadError) as raised:
        load(flux, lone)
    assert str(raised.value) == info.reason


def test_loads_with_its_linear_weights_still_quantised(flux):
    from diffusers.quantizers.gguf.utils import GGUFParameter

    from ldm_studio.engine.checkpoints.flow_gguf import stored_bytes

    model = load(flux, flux["Q8_0"])
    transformer = model.pipe.transformer
    linears = [m for m in transformer.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(isinstance(m.weight, GGUFParameter) for m in linears)
    assert {m.weight.quant_type.name for m in linears} == {"Q8_0"}
    assert all(m.weight.dtype == torch.uint8 for m in linears)
    fp32_bytes = sum(p.numel() * 4 for p in flux["pipe"].transformer.parameters())
    assert stored_bytes(transformer) < 0.3 * fp32_bytes  # Q8_0: 34 bytes per 32 weights, norms in F32


def test_row_splits_of_quantised_tensors_match_dequantising_first(flux):
    """qkv and linear1 split along rows of whole blocks give the weights that dequantising the
    whole file with gguf's reference dequantiser and then converting gives."""
    import gguf
    from diffusers.quantizers.gguf.utils import dequantize_gguf_tensor

    from ldm_studio.engine.checkpoints.flux_keys import convert_flux_transformer

    reader = gguf.GGUFReader(str(flux["Q4_0"]))
    reference = {}
    for tensor in reader.tensors:
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        reference[tensor.name] = torch.from_numpy(np.ascontiguousarray(values).astype(np.float32))
    expected = convert_flux_transformer(reference)
    state = load(flux, flux["Q4_0"]).pipe.transformer.state_dict()
    assert set(state) == set(expected)
    for name, value in state.items():
        got = dequantize_gguf_tensor(value).float()
        assert torch.allclose(got, expected[name], rtol=2e-3, atol=1e-6), name


def test_unquantised_f16_weights_stay_f16_and_run_in_the_activations_dtype(flux):
    model = load(flux, flux["Q4_0"])
    transformer = model.pipe.transformer
    assert transformer.x_embedder.weight.dtype == torch.float16  # img_in, F16 in the file
    assert transformer.transformer_blocks[0].attn.to_q.weight.quant_type.name == "Q4_0"
    assert transformer.transformer_blocks[0].norm1.linear.bias.dtype == torch.float32
    layer = transformer.transformer_blocks[0].attn.to_q
    inputs = torch.randn(3, layer.in_features)
    from diffusers.quantizers.gguf.utils import dequantize_gguf_tensor

    exact = torch.nn.functional.linear(inputs, dequantize_gguf_tensor(layer.weight).float(), layer.bias)
    assert torch.equal(layer(inputs), exact)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the CPU's bf16 path: dequantised in bf16
        fast = layer(inputs)
    assert fast.dtype == torch.bfloat16
    assert torch.allclose(fast.float(), exact, rtol=0.05, atol=0.05)


@pytest.mark.parametrize(
    ("quant", "mean_limit", "max_limit"),
    [("Q8_0", Q8_MEAN_LEVELS, Q8_MAX_LEVELS), ("Q4_0", Q4_MEAN_LEVELS, Q4_MAX_LEVELS)],
)
def test_same_seed_is_close_to_the_float32_file(flux, reference_pixels, quant, mean_limit, max_limit):
    request = request_for(guidance=3.5, negative_prompt="", steps=3)
    got = pixels(generate(load(flux, flux[quant]), request)).astype(np.int16)
    difference = np.abs(got - reference_pixels)
    assert 0 < difference.mean() <= mean_limit
    assert difference.max() <= max_limit


def test_a_prefixed_file_gives_the_same_pixels(flux, tmp_path):
    """Some converters keep ComfyUI's ``model.diffusion_model.`` prefix on every name."""
    import gguf

    source = gguf.GGUFReader(str(flux["Q8_0"]))
    path = tmp_path / "flux1-dev-prefixed-Q8_0.gguf"
    for name in ("ae.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors"):
        shutil.copyfile(flux["bfl"].parent / name, tmp_path / name)
    writer = gguf.GGUFWriter(str(path), arch="flux")
    for tensor in source.tensors:
        name = "model.diffusion_model." + tensor.name
        writer.add_tensor(name, np.array(tensor.data), raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    request = request_for(guidance=3.5, negative_prompt="", steps=3)
    prefixed = pixels(generate(load(flux, path), request))
    plain = pixels(generate(load(flux, flux["Q8_0"]), request))
    assert np.array_equal(prefixed, plain)


@pytest.mark.parametrize("damage", ["truncated", "header", "garbage", "empty"])
def test_a_damaged_gguf_gets_one_sentence(flux, tmp_path, damage):
    data = flux["Q8_0"].read_bytes()
    broken = {
        "truncated": data[: len(data) // 2],
        "header": data[:200],
        "garbage": b"GGUF" + b"\xff" * 500,
        "empty": b"",
    }[damage]
    path = tmp_path / "flux1-dev-Q8_0.gguf"
    path.write_bytes(broken)
    for name in ("ae.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors"):
        shutil.copyfile(flux["bfl"].parent / name, tmp_path / name)
    with pytest.raises(ModelLoadError) as raised:
        inspect_model(path)
    message = str(raised.value)
    assert message.startswith("flux1-dev-Q8_0.gguf ") and "\n" not in message
    with pytest.raises(ModelLoadError) as loading:
        load(flux, path)
    assert str(loading.value) == message


def test_a_ggml_type_without_a_dequantiser_is_named(flux, tmp_path):
    """IQ2_XXS (256-weight blocks of 66 bytes) has no dequantiser in diffusers: refused by name."""
    import gguf

    path = tmp_path / "flux1-dev-IQ2_XXS.gguf"
    kind = gguf.GGMLQuantizationType.IQ2_XXS
    writer = gguf.GGUFWriter(str(path), arch="flux")
    for name, tensor in bfl_transformer_state(flux["pipe"].transformer).items():
        if name == "double_blocks.0.img_mlp.2.weight":  # 64 rows of 256 weights: one block a row
            writer.add_tensor(name, np.zeros((64, 66), dtype=np.uint8), raw_dtype=kind)
        else:
            writer.add_tensor(name, tensor.float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    for name in ("ae.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors"):
        shutil.copyfile(flux["bfl"].parent / name, tmp_path / name)
    info = inspect_model(path)
    assert not info.loadable
    assert info.reason == (
        "flux1-dev-IQ2_XXS.gguf holds tensors in the ggml type IQ2_XXS, which LDM Studio cannot dequantise"
    )
    with pytest.raises(ModelLoadError, match="holds tensors in the ggml type IQ2_XXS"):
        load(flux, path)


def test_other_gguf_files_are_named_and_refused(tmp_path):
    import gguf

    path = tmp_path / "tiny-llama-Q8_0.gguf"
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((32, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    info = inspect_model(path)
    assert not info.loadable
    assert info.reason == (
        "tiny-llama-Q8_0.gguf is a GGUF file of the 'llama' architecture, not a FLUX.1 transformer; "
        "LDM Studio loads GGUF files of FLUX.1 transformers only (such as flux1-dev-Q4_0.gguf)"
    )


def test_cli_info_and_generate(flux, tmp_path, capsys):
    from ldm_studio.cli import main

    assert main(["info", "--no-hash", str(flux["Q4_0"])]) == 0
    out = capsys.readouterr().out
    assert "Type:        gguf" in out and "weights stored as Q4_0" in out
    assert "Memory:" in out and "Loadable:    yes" in out
    args = ["generate", "--model", str(flux["Q8_0"]), "--prompt", "a cat", "--seed", "3", "--steps", "2"]
    args += ["--width", "32", "--height", "32", "--cfg", "3.5", "--sampler", "Euler"]
    args += ["--out", str(tmp_path / "out"), "--part", f"tokenizers={flux['folder']}"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip().endswith(".png")


def test_the_library_lists_gguf_files(flux, tmp_path):
    from ldm_studio.engine.library import ModelLibrary

    entries = ModelLibrary([flux["bfl"].parent], tmp_path / "cache.json").scan(with_hashes=False)
    found = {entry.path.name: entry for entry in entries}
    assert {"flux1-dev-Q8_0.gguf", "flux1-dev-Q4_0.gguf", "flux1-dev.safetensors"} <= set(found)
    gguf_entry = found["flux1-dev-Q4_0.gguf"]
    assert (gguf_entry.family, gguf_entry.file_type, gguf_entry.loadable) == ("flux", "gguf", True)
