"""File helpers shared by the stages: atomic writes, content hashes, stale-part cleanup."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from blocks.processes import pid_alive

log = logging.getLogger(__name__)

# Hashing a large clip on every run would cost more than the stage it guards, so a digest
# is reused while the file's size, mtime and inode are unchanged.
_digests: dict[tuple[str, int, int, int], str] = {}


def sha256_file(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    digest = _digests.get(key)
    if digest is None:
        with path.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        _digests[key] = digest
    return digest


# A part file is named `.<stem>.<host>.<pid>-<random>.part<suffix>`: whoever finds it later
# can tell whether the process writing it is still alive.
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_PART = re.compile(r"^\..*\.([0-9a-f]{8})\.(\d+)-[0-9a-z]+\.part(\.[^.]*)?$")
STALE_FOREIGN_PART_S = 24 * 3600  # another machine's part file: its writer cannot be asked


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() gives a new file: 0644 with the usual umask


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; rename it into place only if the block succeeds.

    A killed run therefore never leaves a half-written file where a finished one is expected
    (and the next run removes what it left: `remove_stale_parts`). The file gets the mode the
    user's umask gives, as any new file would, so a web server can read what we publish.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    name = f".{dest.stem}.{_HOST}.{os.getpid()}-{secrets.token_hex(4)}.part{dest.suffix}"
    tmp = dest.parent / name
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_parts(*folders: Path, depth: int = 2) -> int:
    """Delete part files whose writer is gone (a killed run's); returns how many.

    Looks `depth` folder levels below each folder. A part file of this machine is stale once
    its process has ended; one from another machine (a shared disk) after a day.
    """
    removed = 0
    now = time.time()
    for folder in folders:
        if not folder.is_dir():
            continue
        for level in range(depth + 1):
            for path in folder.glob("/".join(["*"] * level + [".*.part*"])):
                match = _PART.match(path.name)
                try:
                    if match and match.group(1) == _HOST:
                        stale = not pid_alive(int(match.group(2)))
                    else:
                        stale = now - path.stat().st_mtime > STALE_FOREIGN_PART_S
                    if stale:
                        path.unlink()
                        removed += 1
                except OSError:
                    continue  # gone already, or not ours to remove
    if removed:
        log.info("removed %d part file(s) left by killed runs", removed)
    return removed


def write_text_atomic(dest: Path, text: str) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return dest


def copy_atomic(src: Path, dest: Path) -> Path:
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    return dest
