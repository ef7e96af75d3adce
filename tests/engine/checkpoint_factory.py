"""Tiny random-weight models of every supported family, and a writer for the original key layout.

Each tiny model starts from the shipped family config (``resources/configs``) with small widths,
following the conventions ``engine.checkpoints.configs`` assumes for what shapes cannot tell
(SD 1.x: 8 UNet heads; SD 2.x/SDXL and CLIP: 64-wide heads, at least one). It is saved as a
diffusers folder and written as one CompVis/A1111-layout file by ``original_state_dict`` — the
mapping below is written independently of diffusers' converter, so loading the file through
diffusers checks one against the other.
"""

from __future__ import annotations

import atexit
import functools
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ldm_studio.paths import resource

KINDS = ("sd1", "sd2", "sd2-v", "sdxl", "sd1-pruned")
FAMILY = {"sd1": "sd1", "sd1-pruned": "sd1", "sd2": "sd2", "sd2-v": "sd2", "sdxl": "sdxl"}
TEXT_WIDTH = 32
# SDXL's second encoder is wider than its first (1280 vs 768); diffusers tells them apart by width
TEXT_WIDTH_2 = 48
IMAGE_SIZE = 32  # pixels; every tiny model's latent side is divisible by its UNet's downsampling


@dataclass(frozen=True)
class Tiny:
    kind: str
    folder: Path  # diffusers layout
    pipe: Any

    @property
    def family(self) -> str:
        return FAMILY[self.kind]

    @property
    def prediction_type(self) -> str:
        return self.pipe.scheduler.config.prediction_type


def _config(folder: str, component: str) -> dict[str, Any]:
    name = "scheduler_config.json" if component == "scheduler" else "config.json"
    data = json.loads(resource("configs", folder, component, name).read_text(encoding="utf-8"))
    return {key: value for key, value in data.items() if not key.startswith("_")}


def _unet_settings(kind: str) -> dict[str, Any]:
    if kind == "sdxl":
        pooled = TEXT_WIDTH_2
        return {
            "block_out_channels": [32, 64, 64],
            "transformer_layers_per_block": [1, 1, 2],
            "attention_head_dim": [1, 1, 1],
            "cross_attention_dim": TEXT_WIDTH + TEXT_WIDTH_2,
            "addition_time_embed_dim": 8,
            "projection_class_embeddings_input_dim": pooled + 6 * 8,
            "layers_per_block": 1,
        }
    if kind == "sd1-pruned":  # BK-SDM-Tiny style: one layer per block, no mid block, no 4th level
        return {
            "block_out_channels": [32, 64, 64],
            "down_block_types": ["CrossAttnDownBlock2D"] * 3,
            "up_block_types": ["CrossAttnUpBlock2D"] * 3,
            "mid_block_type": None,
            "layers_per_block": 1,
            "cross_attention_dim": TEXT_WIDTH,
            "transformer_layers_per_block": [1, 1, 1],
        }
    settings = {
        "block_out_channels": [32, 64],
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "layers_per_block": 1,
        "cross_attention_dim": TEXT_WIDTH,
        "transformer_layers_per_block": [1, 1],
    }
    if kind.startswith("sd2"):
        settings["attention_head_dim"] = [1, 1]
    return settings


def _text_encoder(folder: str, component: str) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = _config(folder, component)
    width = TEXT_WIDTH_2 if component == "text_encoder_2" else TEXT_WIDTH
    config.update(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2, num_attention_heads=1)
    if component == "text_encoder_2":
        config["projection_dim"] = width
        return CLIPTextModelWithProjection(CLIPTextConfig(**config))
    return CLIPTextModel(CLIPTextConfig(**config))


def _tokenizer(folder: str, component: str, scratch: Path) -> Any:
    from transformers import CLIPTokenizer

    target = scratch / f"{folder}-{component}"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        (target / name).write_bytes(resource("tokenizers", "clip", name).read_bytes())
    settings = resource("configs", folder, component, "tokenizer_config.json").read_bytes()
    (target / "tokenizer_config.json").write_bytes(settings)
    return CLIPTokenizer.from_pretrained(target, local_files_only=True)


def build_pipeline(kind: str, scratch: Path, seed: int = 0) -> Any:
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel

    folder = "sd1" if kind == "sd1-pruned" else kind
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**{**_config(folder, "unet"), **_unet_settings(kind)})
    vae = AutoencoderKL(
        **{
            **_config(folder, "vae"),
            "block_out_channels": [32, 64],
            "layers_per_block": 1,
            "down_block_types": ["DownEncoderBlock2D"] * 2,
            "up_block_types": ["UpDecoderBlock2D"] * 2,
        }
    )
    scheduler_config = _config(folder, "scheduler")
    scheduler_class = getattr(
        diffusers,
        json.loads(resource("configs", folder, "scheduler", "scheduler_config.json").read_text())[
            "_class_name"
        ],
    )
    scheduler = scheduler_class.from_config(scheduler_config)
    parts = {
        "unet": unet,
        "vae": vae,
        "scheduler": scheduler,
        "text_encoder": _text_encoder(folder, "text_encoder"),
        "tokenizer": _tokenizer(folder, "tokenizer", scratch),
    }
    if kind == "sdxl":
        parts["text_encoder_2"] = _text_encoder(folder, "text_encoder_2")
        parts["tokenizer_2"] = _tokenizer(folder, "tokenizer_2", scratch)
        return diffusers.StableDiffusionXLPipeline(**parts)
    return diffusers.StableDiffusionPipeline(
        **parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )


def build_tiny(kind: str, root: Path, seed: int = 0) -> Tiny:
    pipe = build_pipeline(kind, root / "scratch", seed)
    folder = root / f"tiny-{kind}"
    pipe.save_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return Tiny(kind, folder, pipe)


# --- diffusers -> original (CompVis / A1111) key layout -----------------------------------------

RESNET_NAMES = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)
UNET_FIXED = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
}


def _resnet(rest: str) -> str:
    for new, old in RESNET_NAMES:
        if rest.startswith(new + "."):
            return old + rest[len(new) :]
    return rest


def unet_key(key: str, layers: int, up_attention: list[bool]) -> str:
    step = layers + 1
    head, _, tail = key.rpartition(".")  # tail: weight / bias
    if head in UNET_FIXED:
        return f"{UNET_FIXED[head]}.{tail}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"input_blocks.{1 + int(m[1]) * step + int(m[2])}.0.{_resnet(m[3])}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", key):
        return f"input_blocks.{1 + int(m[1]) * step + int(m[2])}.1.{m[3]}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{(int(m[1]) + 1) * step}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"output_blocks.{int(m[1]) * step + int(m[2])}.0.{_resnet(m[3])}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", key):
        return f"output_blocks.{int(m[1]) * step + int(m[2])}.1.{m[3]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        block = int(m[1])
        return f"output_blocks.{block * step + layers}.{2 if up_attention[block] else 1}.conv.{m[2]}"
    raise KeyError(f"no original name for UNet key {key}")


VAE_ATTENTION_NAMES = (
    ("group_norm", "norm"),
    ("to_q", "q"),
    ("to_k", "k"),
    ("to_v", "v"),
    ("to_out.0", "proj_out"),
)


def vae_key(key: str, levels: int) -> str:
    key = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", key):
        rest = m[2]
        for new, old in VAE_ATTENTION_NAMES:
            rest = rest.replace(new + ".", old + ".") if rest.startswith(new + ".") else rest
        return f"{m[1]}.mid.attn_1.{rest}"
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(.+)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}"
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.+)", key):
        return f"encoder.down.{m[1]}.downsample.{m[2]}"
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(.+)", key):
        return f"decoder.up.{levels - 1 - int(m[1])}.block.{m[2]}"
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)", key):
        return f"decoder.up.{levels - 1 - int(m[1])}.upsample.{m[2]}"
    return key


OPEN_CLIP_NAMES = (
    ("self_attn.out_proj", "attn.out_proj"),
    ("layer_norm1", "ln_1"),
    ("layer_norm2", "ln_2"),
    ("mlp.fc1", "mlp.c_fc"),
    ("mlp.fc2", "mlp.c_proj"),
)


def open_clip_state(text: dict[str, torch.Tensor], prefix: str, extra_layer: bool) -> dict[str, torch.Tensor]:
    """A transformers CLIP text model as an OpenCLIP text tower (fused q/k/v, transposed projection).

    ``extra_layer`` adds the final block SD 2.x checkpoints carry but never run (they condition on
    the penultimate layer), with random weights.
    """
    text = {k.removeprefix("text_model."): v for k, v in text.items()}
    out = {
        f"{prefix}token_embedding.weight": text["embeddings.token_embedding.weight"],
        f"{prefix}positional_embedding": text["embeddings.position_embedding.weight"],
        f"{prefix}ln_final.weight": text["final_layer_norm.weight"],
        f"{prefix}ln_final.bias": text["final_layer_norm.bias"],
    }
    if "text_projection.weight" in text:
        out[f"{prefix}text_projection"] = text["text_projection.weight"].T
    else:
        width = text["embeddings.token_embedding.weight"].shape[1]
        out[f"{prefix}text_projection"] = torch.randn(width, width)
    layers = sorted({int(m[1]) for k in text if (m := re.match(r"encoder\.layers\.(\d+)\.", k))})
    for layer in layers:
        source = f"encoder.layers.{layer}."
        target = f"{prefix}transformer.resblocks.{layer}."
        for kind in ("weight", "bias"):
            fused = [text[f"{source}self_attn.{p}_proj.{kind}"] for p in "qkv"]
            out[f"{target}attn.in_proj_{kind}"] = torch.cat(fused)
        for key, value in text.items():
            if key.startswith(source) and not re.search(r"self_attn\.[qkv]_proj\.", key):
                rest = key[len(source) :]
                for new, old in OPEN_CLIP_NAMES:
                    rest = rest.replace(new, old)
                out[target + rest] = value
    if extra_layer:
        last = f"{prefix}transformer.resblocks.{layers[-1]}."
        for key in [k for k in out if k.startswith(last)]:
            out[key.replace(last, f"{prefix}transformer.resblocks.{layers[-1] + 1}.")] = torch.randn_like(
                out[key]
            )
    return out


def original_state_dict(pipe: Any, kind: str) -> dict[str, torch.Tensor]:
    unet_config = pipe.unet.config
    up_attention = ["CrossAttn" in t for t in unet_config.up_block_types]
    state = {
        f"model.diffusion_model.{unet_key(k, unet_config.layers_per_block, up_attention)}": v
        for k, v in pipe.unet.state_dict().items()
    }
    levels = len(pipe.vae.config.block_out_channels)
    for key, value in pipe.vae.state_dict().items():
        if ".mid_block.attentions." in key and value.ndim == 2:
            value = value[:, :, None, None]  # the original VAE attention uses 1x1 convolutions
        state[f"first_stage_model.{vae_key(key, levels)}"] = value
    text = pipe.text_encoder.state_dict()
    if FAMILY[kind] == "sd1":
        state.update(
            {
                f"cond_stage_model.transformer.text_model.{k.removeprefix('text_model.')}": v
                for k, v in text.items()
            }
        )
    elif FAMILY[kind] == "sd2":
        state.update(open_clip_state(text, "cond_stage_model.model.", extra_layer=True))
    else:
        state.update(
            {
                f"conditioner.embedders.0.transformer.text_model.{k.removeprefix('text_model.')}": v
                for k, v in text.items()
            }
        )
        state.update(
            open_clip_state(pipe.text_encoder_2.state_dict(), "conditioner.embedders.1.model.", False)
        )
    if FAMILY[kind] != "sdxl":
        state["alphas_cumprod"] = pipe.scheduler.alphas_cumprod.clone()
    return {key: value.detach().clone().contiguous() for key, value in state.items()}


def write_single_file(pipe: Any, kind: str, path: Path, *, numpy_metadata: bool = False) -> Path:
    """Write the original layout as .safetensors, or as a .ckpt (``{"state_dict": ...}`` like
    CompVis training runs, optionally with numpy-scalar ``global_step``/``epoch``)."""
    state = original_state_dict(pipe, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        payload: dict[str, Any] = {"state_dict": state}
        if numpy_metadata:
            import numpy as np

            payload.update(global_step=np.int64(1234), epoch=np.int64(5), loss=np.float32(0.1))
        torch.save(payload, path)
    return path


# --- built once per test process, shared by every test module ----------------------------------

FILE_STEMS = {"sd2": "tiny-sd2-512-base", "sd2-v": "tiny-sd2-768-v"}  # the name hints SD 2.x needs


@functools.cache
def scratch_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="ldm-studio-tiny-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.cache
def tiny(kind: str) -> Tiny:
    """The tiny model of ``kind``, saved as a diffusers folder (build once, never mutate)."""
    return build_tiny(kind, scratch_root() / kind)


@functools.cache
def single_file(kind: str, suffix: str = ".safetensors", numpy_metadata: bool = False) -> Path:
    """``tiny(kind)`` written as one original-layout file (treat as read-only; copy to change)."""
    stem = FILE_STEMS.get(kind, f"tiny-{kind}") + ("-np" if numpy_metadata else "")
    model = tiny(kind)
    return write_single_file(
        model.pipe, kind, scratch_root() / "files" / f"{stem}{suffix}", numpy_metadata=numpy_metadata
    )


def generate(pipe: Any, seed: int = 0) -> Any:
    """Two denoising steps with a fixed generator: a plain diffusers call, as numpy [0, 1] images."""
    return pipe(
        "a photo of a cat",
        negative_prompt="blurry",
        num_inference_steps=2,
        height=IMAGE_SIZE,
        width=IMAGE_SIZE,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    ).images
