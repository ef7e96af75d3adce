"""The wheel (what pip and pipx install) carries every resource, and the installed command finds them."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# what building the wheel reads; copying it keeps build/ and *.egg-info out of the checkout
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "ldm_studio", "resources")


def skip_caches(_folder: str, names: list[str]) -> set[str]:
    return {name for name in names if name == "__pycache__" or name.endswith(".pyc")}


def shipped_files(folder: Path) -> list[Path]:
    return sorted(
        path.relative_to(folder)
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        item = REPO / name
        if item.is_dir():
            shutil.copytree(item, source / name, ignore=skip_caches)
        else:
            shutil.copy2(item, source / name)
    out = root / "out"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("ldm_studio-*.whl")
    return source, wheel


def test_wheel_holds_every_resource_and_module(built):
    source, wheel = built
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    resources = shipped_files(source / "resources")
    assert Path("licenses/components.toml") in resources and len(resources) > 20
    missing = [str(path) for path in resources if f"ldm_studio/_resources/{path.as_posix()}" not in names]
    assert missing == []
    modules = [path for path in shipped_files(source / "ldm_studio") if path.suffix == ".py"]
    assert [str(path) for path in modules if f"ldm_studio/{path.as_posix()}" not in names] == []
    assert "ldm-studio = ldm_studio.__main__:main" in scripts


def test_installed_command_finds_its_resources_outside_the_checkout(built, tmp_path):
    _source, wheel = built
    venv = tmp_path / "venv"
    # the dependencies (torch, Qt…) come from the system site; ldm_studio itself from the wheel
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    run = {"cwd": tmp_path, "env": env, "capture_output": True, "text": True, "timeout": 120}

    version = subprocess.run([venv / "bin" / "ldm-studio", "--version"], **run)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("LDM Studio ")

    probe = (
        "import ldm_studio.paths as p; print(p.__file__); print(p.resource('licenses', 'components.toml'))"
    )
    located = subprocess.run([python, "-c", probe], **run)
    assert located.returncode == 0, located.stderr
    module_file, components = (Path(line) for line in located.stdout.split())
    assert module_file.is_relative_to(venv) and components.is_relative_to(venv)
    assert components.is_file()

    installed = subprocess.run([venv / "bin" / "ldm-studio", "--install-desktop-entry"], **run)
    assert installed.returncode == 0, installed.stderr
    entry = (tmp_path / "xdg" / "applications" / "io.github.ldmstudio.LDMStudio.desktop").read_text()
    assert f"Exec={venv / 'bin' / 'ldm-studio'}\n" in entry
