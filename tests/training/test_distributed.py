"""Both trainers under DDP (two CPU processes, gloo, launched as `accelerate launch` would): each
process takes half of every global batch, so the result equals one process training the whole batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from ldm_studio.training.config import to_toml
from ldm_studio.training.ldm_training import train_ldm
from ldm_studio.training.lora_training import train_lora
from ldm_studio.training.vae_training import train_vae
from tests.engine.checkpoint_factory import tiny
from tests.training.lora_helpers import tiny_lora_config, write_odd_folder
from tests.training.tiny_configs import tiny_ldm_config, tiny_vae_config

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_lora_and_ldm_training_under_two_process_ddp_match_one_process(
    shapes_folder: Path, tmp_path: Path
) -> None:
    data = write_odd_folder(tmp_path / "odd")
    lora_single = tiny_lora_config(tiny("sd1").folder, data, tmp_path / "single.safetensors", 3)
    lora_ddp = tiny_lora_config(tiny("sd1").folder, data, tmp_path / "ddp.safetensors", 3)
    (tmp_path / "lora.toml").write_text(to_toml(lora_ddp))
    vae_run = tmp_path / "vae"
    train_vae(shapes_folder, vae_run, tiny_vae_config(2))
    ldm_config = tiny_ldm_config(3)
    (tmp_path / "ldm.toml").write_text(to_toml(ldm_config))

    environment = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        str(REPO / "tests" / "training" / "ddp_driver.py"),
        json.dumps(["train", "lora", "--config", str(tmp_path / "lora.toml")]),
        json.dumps(["train", "ldm", "--data", str(shapes_folder), "--vae", str(vae_run),
                    "--out", str(tmp_path / "ldm_ddp"), "--config", str(tmp_path / "ldm.toml")]),
    ]  # fmt: skip
    launched = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    # the single-process references train while the two DDP processes start up
    train_lora(lora_single)
    train_ldm(shapes_folder, vae_run, tmp_path / "ldm_single", ldm_config)
    output, _ = launched.communicate(timeout=240)
    assert launched.returncode == 0, output[-3000:]

    single, distributed = load_file(lora_single.out), load_file(lora_ddp.out)
    assert single.keys() == distributed.keys()
    assert any(tensor.abs().max() > 0 for key, tensor in single.items() if key.endswith("lora_up.weight"))
    for key in single:
        assert torch.allclose(single[key].float(), distributed[key].float(), atol=2e-3), key  # fp16 file

    def ldm_weights(run: Path) -> dict[str, torch.Tensor]:
        return torch.load(run / "checkpoint.pt", weights_only=True)["model"]

    reference, parallel = ldm_weights(tmp_path / "ldm_single"), ldm_weights(tmp_path / "ldm_ddp")
    # Adam divides by the root of tiny second moments, so a few weights amplify float-order
    # differences of the all-reduce; a missing or wrong reduction would move most of them.
    differences = torch.cat([(reference[k] - parallel[k]).abs().flatten() for k in reference])
    assert differences.max() < 0.2 * ldm_config.optim.learning_rate
    assert (differences > 1e-6).float().mean() < 0.01
