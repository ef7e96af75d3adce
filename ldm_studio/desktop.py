"""Linux desktop integration: ``ldm-studio --install-desktop-entry`` puts LDM Studio in the menus.

For the current user only, following the freedesktop.org specs: the desktop entry goes to
``$XDG_DATA_HOME/applications``, the icons to ``$XDG_DATA_HOME/icons/hicolor/<size>/apps`` and the
AppStream metadata to ``$XDG_DATA_HOME/metainfo`` (``$XDG_DATA_HOME`` defaults to
``~/.local/share``). The entry's ``Exec`` is rewritten to this installation's absolute launcher,
because menus are started without the shell's PATH (pipx's ``~/.local/bin`` is often missing) and
the stand-alone application is on no PATH at all. No Qt import: the command line uses this.

A leaf module (it imports only ``ldm_studio.paths``): the window reads ``APP_ID`` from here, and the
command line calls the installer, so importing the CLI from here would close a circle
(cli -> ui.launch -> desktop -> cli). Failures are ``DesktopEntryError``; the CLI prints them.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ldm_studio.paths import resource

log = logging.getLogger(__name__)

APP_ID = "io.github.ldmstudio.LDMStudio"
DESKTOP_FILE = f"{APP_ID}.desktop"
METAINFO_FILE = f"{APP_ID}.metainfo.xml"
ICON_THEME = "hicolor"
# characters the desktop-entry spec reserves in Exec arguments: such arguments must be quoted
EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


class DesktopEntryError(Exception):
    """Installing the desktop entry is impossible here or failed; the message says why."""


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset or relative (the spec says to
    ignore relative values)."""
    configured = os.environ.get("XDG_DATA_HOME", "")
    if configured and Path(configured).is_absolute():
        return Path(configured)
    return Path.home() / ".local" / "share"


def launcher_command() -> list[str]:
    """The command that starts this very installation, with absolute paths."""
    if getattr(sys, "frozen", False):  # the stand-alone application: the executable itself
        return [str(Path(sys.executable).absolute())]
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name == "ldm-studio" and script.is_file():
        return [str(script.absolute())]  # the console script pip or pipx installed
    beside_python = Path(sys.executable).parent / "ldm-studio"
    if beside_python.is_file():
        return [str(beside_python)]
    return [str(Path(sys.executable).absolute()), "-m", "ldm_studio"]


def exec_value(command: list[str]) -> str:
    """``command`` as a desktop-entry Exec value: reserved arguments double-quoted, ``%`` doubled,
    and backslashes doubled once more for the string-value escaping the file format applies."""
    arguments = []
    for argument in command:
        if EXEC_RESERVED & set(argument):
            escaped = "".join("\\" + char if char in '"`$\\' else char for char in argument)
            argument = f'"{escaped}"'
        arguments.append(argument.replace("%", "%%"))
    return " ".join(arguments).replace("\\", "\\\\")


def desktop_entry(command: list[str]) -> str:
    """The shipped desktop file with ``Exec``/``TryExec`` pointing at ``command``."""
    lines = []
    for line in resource("linux", DESKTOP_FILE).read_text(encoding="utf-8").splitlines():
        key = line.split("=", 1)[0]
        if key == "Exec":
            line = f"Exec={exec_value(command)}"
        elif key == "TryExec":
            line = f"TryExec={command[0].replace(chr(92), chr(92) * 2)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def shipped_icons() -> list[Path]:
    """Every icon file under resources/icons/hicolor, relative to that folder."""
    root = resource("icons", ICON_THEME)
    return sorted(path.relative_to(root) for path in root.rglob(f"{APP_ID}.*") if path.is_file())


def installed_paths(home: Path) -> list[Path]:
    return [
        home / "applications" / DESKTOP_FILE,
        home / "metainfo" / METAINFO_FILE,
        *(home / "icons" / ICON_THEME / icon for icon in shipped_icons()),
    ]


def install_desktop_entry(home: Path | None = None, command: list[str] | None = None) -> int:
    """Install the desktop entry, icons and metainfo for the current user; print what was written."""
    if sys.platform in ("win32", "darwin"):
        raise DesktopEntryError(
            "desktop entries are for Linux desktops; on this system use the app bundle or installer"
        )
    home = home or data_home()
    command = command or launcher_command()
    written = []
    try:
        entry = home / "applications" / DESKTOP_FILE
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.write_text(desktop_entry(command), encoding="utf-8")
        written.append(entry)
        metainfo = home / "metainfo" / METAINFO_FILE
        metainfo.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(resource("linux", METAINFO_FILE), metainfo)
        written.append(metainfo)
        for icon in shipped_icons():
            target = home / "icons" / ICON_THEME / icon
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(resource("icons", ICON_THEME, *icon.parts), target)
            written.append(target)
    except OSError as error:
        raise DesktopEntryError(f"could not install the desktop entry into {home}: {error}") from error
    refresh_caches(home)
    for path in written:
        print(f"installed {path}")
    print(f"LDM Studio is in your applications menu; it starts: {' '.join(command)}")
    return 0


def remove_desktop_entry(home: Path | None = None) -> int:
    """Remove what ``install_desktop_entry`` wrote (and nothing else)."""
    home = home or data_home()
    for path in installed_paths(home):
        if path.is_file():
            path.unlink()
            print(f"removed {path}")
    refresh_caches(home)
    return 0


def refresh_caches(home: Path) -> None:
    """Tell menus and icon themes about the change where their cache tools exist.

    Most desktops notice new files on their own; the caches only make it immediate, so a missing
    tool or a failure is logged, never fatal.
    """
    tools = [
        ["update-desktop-database", "-q", str(home / "applications")],
        ["gtk-update-icon-cache", "-q", "-t", "-f", str(home / "icons" / ICON_THEME)],
    ]
    for tool in tools:
        if shutil.which(tool[0]) is None:
            continue
        try:
            subprocess.run(tool, check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as error:
            log.info("%s did not refresh its cache: %s", tool[0], error)
