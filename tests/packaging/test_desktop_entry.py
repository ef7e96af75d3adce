import configparser
import shlex
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from PIL import Image

from ldm_studio import APP_NAME, __version__
from ldm_studio.cli import main as cli_main
from ldm_studio.desktop import (
    APP_ID,
    DESKTOP_FILE,
    METAINFO_FILE,
    exec_value,
    install_desktop_entry,
    remove_desktop_entry,
)
from ldm_studio.paths import resource

PNG_SIZES = (16, 32, 48, 64, 128, 256, 512)


def read_desktop_file(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    home = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


def test_cli_flag_installs_entry_icons_and_metainfo(data_home, capsys):
    assert cli_main(["--install-desktop-entry"]) == 0
    entry = read_desktop_file(data_home / "applications" / DESKTOP_FILE)
    assert entry["Name"] == APP_NAME
    assert entry["Icon"] == APP_ID
    program = shlex.split(entry["Exec"])[0]
    assert Path(program).is_absolute()  # menus do not search the shell's PATH
    assert program == entry["TryExec"] and Path(program).is_file()
    assert (data_home / "metainfo" / METAINFO_FILE).read_bytes() == resource(
        "linux", METAINFO_FILE
    ).read_bytes()
    svg = data_home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    assert svg.read_text(encoding="utf-8").lstrip().startswith("<svg")
    for size in PNG_SIZES:
        with Image.open(data_home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png") as png:
            assert png.size == (size, size) and png.mode == "RGBA"
    printed = capsys.readouterr().out
    assert printed.count("installed ") == 2 + 1 + len(PNG_SIZES)


def test_exec_points_at_the_given_launcher_and_removal_cleans_up(data_home, capsys):
    install_desktop_entry(command=["/opt/LDM Studio/ldm-studio"])
    entry_file = data_home / "applications" / DESKTOP_FILE
    entry = read_desktop_file(entry_file)
    assert entry["Exec"] == '"/opt/LDM Studio/ldm-studio"'
    assert entry["TryExec"] == "/opt/LDM Studio/ldm-studio"
    (data_home / "applications" / "someone-else.desktop").write_text("[Desktop Entry]\n")

    remove_desktop_entry()
    assert not entry_file.exists()
    assert not list((data_home / "icons").rglob(f"{APP_ID}.*"))
    assert (data_home / "applications" / "someone-else.desktop").exists()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["/usr/bin/ldm-studio"], "/usr/bin/ldm-studio"),
        (["/usr/bin/python3", "-m", "ldm_studio"], "/usr/bin/python3 -m ldm_studio"),
        (["/home/a b/ldm-studio"], '"/home/a b/ldm-studio"'),
        # quoted: $ and \ get a backslash; then every backslash is doubled by the string escaping
        (["/x/100%/$HOME\\y"], '"/x/100%%/\\\\$HOME\\\\\\\\y"'),
    ],
)
def test_exec_value_follows_the_desktop_entry_quoting_rules(command, expected):
    assert exec_value(command) == expected


def test_relative_xdg_data_home_is_ignored(monkeypatch, tmp_path):
    from ldm_studio.desktop import data_home

    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_home() == tmp_path / ".local" / "share"


def test_desktop_file_metainfo_and_icons_agree():
    entry = read_desktop_file(resource("linux", DESKTOP_FILE))
    assert entry["Type"] == "Application" and entry["Terminal"] == "false"
    assert entry["Exec"].split()[0] == "ldm-studio"  # the console script name from pyproject
    assert "Graphics" in entry["Categories"].split(";")

    root = ElementTree.parse(resource("linux", METAINFO_FILE)).getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.findtext("name") == APP_NAME
    assert root.findtext("launchable") == DESKTOP_FILE
    assert root.findtext("icon") == entry["Icon"] == APP_ID
    assert root.find("provides/binary").text == "ldm-studio"
    assert root.find("releases/release").get("version") == __version__
