"""What both private servers share: free loopback ports and owner-pid files.

Each private server's temporary directory holds the pid of the process that
started it; a directory whose owner is gone belongs to a server nobody will stop,
and the next `start()` of that kind reaps it. Nothing here starts a server.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"
OWNER_FILE = "owner.pid"


def free_port(avoid: int) -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, never `avoid`."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port != avoid:
            return port


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def make_root(prefix: str) -> Path:
    """A new temporary directory that names this process as its owner."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    (root / OWNER_FILE).write_text(str(os.getpid()))
    return root


def orphans(prefix: str) -> Iterator[Path]:
    """The temporary directories of `prefix` whose owner process is gone."""
    for root in Path(tempfile.gettempdir()).glob(prefix + "*"):
        owner = read_pid(root / OWNER_FILE)
        if owner is not None and not alive(owner):
            yield root


def log_tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
