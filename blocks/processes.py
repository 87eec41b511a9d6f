"""Child processes that never outlive the process that started them.

ffmpeg and the CLI's temporary Prefect server are started through `setpriv --pdeathsig`
(util-linux, on every Debian system): the kernel kills them when their parent dies, even by
SIGKILL, so a killed run leaves no encoder or server behind. Live children are also kept in
a registry, so an interrupt can end them all at once before the process exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from functools import lru_cache
from typing import Any

_live: set[subprocess.Popen[Any]] = set()
_lock = threading.Lock()


@lru_cache
def _setpriv() -> str | None:
    return shutil.which("setpriv")


def tied_to_parent(cmd: list[str]) -> list[str]:
    """`cmd`, run so that it is killed when the thread that starts it goes away."""
    exe = _setpriv()
    return [exe, "--pdeathsig", "KILL", "--", *cmd] if exe else list(cmd)


def spawn(cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen` of a child tied to this process and registered until `reap`."""
    proc = subprocess.Popen(tied_to_parent(cmd), **kwargs)
    with _lock:
        _live.add(proc)
    return proc


def reap(proc: subprocess.Popen[Any]) -> None:
    """Forget a child that has ended (or is about to be waited for)."""
    with _lock:
        _live.discard(proc)


def kill_all() -> None:
    """SIGKILL every registered child that is still running (an interrupt's last act)."""
    with _lock:
        procs = list(_live)
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                os.kill(proc.pid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
