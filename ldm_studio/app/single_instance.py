"""One LDM Studio per user: a second launch brings the first window forward instead of starting.

The first instance listens on a local socket (QLocalServer: a Unix socket, a named pipe on
Windows). A later launch connects, sends one JSON line (``{"action": "activate", "model": ...}``)
and waits for ``{"ok": true}``. When the socket is left over from a crashed instance nobody
answers the connection; it is removed and this launch becomes the first.

The name includes the user and the config folder, so two users, or two ``LDM_STUDIO_HOME``
folders (tests, portable installs), never see each other.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from ldm_studio.paths import user_dirs

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)

ANSWER_TIMEOUT_MS = 3000
# a connection refused or a missing socket means nobody is listening (none started, or it crashed)
NOBODY_LISTENING = (
    QLocalSocket.LocalSocketError.ServerNotFoundError,
    QLocalSocket.LocalSocketError.ConnectionRefusedError,
)


def default_server_name() -> str:
    """Stable for one user and config folder, different for any other."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    key = f"{user}\n{user_dirs().config}".encode()
    return f"ldm-studio-{hashlib.sha256(key).hexdigest()[:16]}"


@dataclass(frozen=True)
class Claim:
    """The outcome of ``InstanceGuard.claim``.

    primary: this launch should open its window. answered: another instance exists and confirmed
    it raised its window. message: what to tell the user when this launch is not the primary one
    (or why single-instance behaviour is off).
    """

    primary: bool
    answered: bool = False
    message: str = ""


class InstanceGuard(QObject):
    """Owns the local server of the primary instance; emits ``activationRequested`` with the later
    launch's request (a dict: ``model`` is the path it was asked to open, or None)."""

    activationRequested = Signal(object)

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name or default_server_name()
        self.server: QLocalServer | None = None

    def claim(self, request: dict[str, Any] | None = None, timeout_ms: int = ANSWER_TIMEOUT_MS) -> Claim:
        """Hand ``request`` to a running instance, or become the running instance.

        Blocks for at most about ``timeout_ms`` when another instance exists; call it before
        building the window, once a Q(Core|Gui)Application exists.
        """
        outcome = self._ask_running_instance(request or {}, timeout_ms)
        if outcome is not None:
            return outcome
        return self._listen(request or {}, timeout_ms)

    def _ask_running_instance(self, request: dict[str, Any], timeout_ms: int) -> Claim | None:
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(timeout_ms):
            if socket.error() in NOBODY_LISTENING:
                return None
            return Claim(
                primary=True,
                message=f"Could not check for another running LDM Studio ({socket.errorString()}); "
                "starting anyway.",
            )
        message = json.dumps({"action": "activate", "pid": os.getpid(), **request}) + "\n"
        socket.write(message.encode())
        socket.waitForBytesWritten(timeout_ms)
        reply = bytearray()
        while b"\n" not in reply and socket.waitForReadyRead(timeout_ms):
            reply += bytes(socket.readAll().data())
        socket.disconnectFromServer()
        try:
            answer = json.loads(reply.decode().splitlines()[0]) if reply else {}
        except (UnicodeDecodeError, json.JSONDecodeError, IndexError):
            answer = {}
        if answer.get("ok"):
            return Claim(
                primary=False,
                answered=True,
                message="LDM Studio is already running; its window was brought to the front.",
            )
        return Claim(
            primary=False,
            message=(
                f"LDM Studio is already running (process {answer['pid']}) but refused: {answer.get('error')}"
                if answer.get("pid")
                else f"Another LDM Studio is running but did not answer within {timeout_ms / 1000:g} s; "
                "it may be busy or stuck. Close it (or end its process) and start LDM Studio again."
            ),
        )

    def _listen(self, request: dict[str, Any], timeout_ms: int) -> Claim:
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            if server.serverError() != QLocalSocket.LocalSocketError.AddressInUseError:
                return self._give_up(server)
            # Someone may have started listening since we looked: ask once more before treating
            # the socket as left over from a crash.
            outcome = self._ask_running_instance(request, timeout_ms)
            if outcome is not None:
                return outcome
            log.info("removing the stale single-instance socket %s", self.name)
            QLocalServer.removeServer(self.name)
            if not server.listen(self.name):
                return self._give_up(server)
        server.newConnection.connect(self._accept)
        self.server = server
        return Claim(primary=True)

    def _give_up(self, server: QLocalServer) -> Claim:
        message = (
            f"Single-instance check is off: cannot listen on {self.name} ({server.errorString()}); "
            "a second launch will open a second window."
        )
        log.warning(message)
        return Claim(primary=True, message=message)

    def _accept(self) -> None:
        assert self.server is not None
        while self.server.hasPendingConnections():
            connection = self.server.nextPendingConnection()
            buffer = bytearray()

            def read(connection: QLocalSocket = connection, buffer: bytearray = buffer) -> None:
                buffer += bytes(connection.readAll().data())
                if b"\n" in buffer:
                    self._answer(connection, bytes(buffer).split(b"\n", 1)[0])

            connection.readyRead.connect(read)
            connection.disconnected.connect(connection.deleteLater)
            if connection.bytesAvailable():
                read()

    def _answer(self, connection: QLocalSocket, line: bytes) -> None:
        try:
            request = json.loads(line.decode())
            if not isinstance(request, dict) or request.get("action") != "activate":
                raise ValueError(f"unknown request {line[:80]!r}")
        except (UnicodeDecodeError, ValueError) as error:
            reply = {"ok": False, "pid": os.getpid(), "error": str(error)}
        else:
            log.info("another launch asked this instance to come forward: %s", request)
            self.activationRequested.emit(request)
            reply = {"ok": True, "pid": os.getpid()}
        connection.write((json.dumps(reply) + "\n").encode())
        connection.flush()
        connection.disconnectFromServer()

    def release(self) -> None:
        """Stop listening (the socket file is removed), e.g. when the window closes."""
        if self.server is not None:
            self.server.close()
            self.server = None


def bring_to_front(window: QWidget) -> None:
    """Un-minimise, raise and focus ``window``.

    Window managers may refuse to move focus to a window the user did not click (focus-stealing
    prevention; on Wayland activation needs a token the launcher does not pass); the window is
    then raised or flagged as wanting attention instead.
    """
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    window.setWindowState(
        (window.windowState() & ~Qt.WindowState.WindowMinimized) | Qt.WindowState.WindowActive
    )
    window.show()
    window.raise_()
    window.activateWindow()
    QApplication.alert(window)
