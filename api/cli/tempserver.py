"""The CLI's temporary Prefect API server, and the empty database it starts from.

`mpt make` needs a Prefect API for its run. With none named by PREFECT_API_URL it starts one
for itself before importing anything heavy, so the server's start-up overlaps our own
imports and validation. The server:

- runs in a session of its own, so the terminal's Ctrl-C reaches only `mpt`, which then
  records the run's end through a server that is still there, and stops it;
- is tied to `mpt` (`blocks.processes`): if `mpt` dies, even by SIGKILL, so does the server;
- starts, on a fresh Prefect home, from a copy of an empty database that is already
  migrated. `make` builds that template once per Prefect version (`python -m
  api.cli.tempserver`); migrating a new SQLite database costs about 4 CPU-seconds per run
  otherwise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from blocks.processes import reap, spawn


def template_path() -> Path:
    """Where the migrated empty database of this Prefect version lives: in the install."""
    return Path(sys.prefix) / "share" / "mpt" / f"prefect-{version('prefect')}.db"


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def seed_database(home: Path) -> bool:
    """Copy the template into a Prefect home that has no database yet; False when there is
    no template (the server then migrates a new database itself)."""
    db, template = home / "prefect.db", template_path()
    if db.exists() or not template.is_file():
        return False
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f".prefect.db.{os.getpid()}.part"
    shutil.copyfile(template, tmp)
    try:
        os.link(tmp, db)  # never replaces a database another run created meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _revision(db: Path) -> str | None:
    """The Alembic revision a Prefect SQLite database is at (None: unreadable or none)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def up_to_date(home: Path) -> bool:
    """Whether the home's database is at this Prefect version's head (the template's)."""
    template = template_path()
    if not template.is_file():
        return False
    current = _revision(home / "prefect.db")
    return current is not None and current == _revision(template)


def build_template() -> Path:
    """Migrate an empty database in a scratch home and keep it as this version's template."""
    target = template_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as home:
        env = os.environ | {"PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
        env.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL", None)
        subprocess.run(
            [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        shutil.copyfile(Path(home) / "prefect.db", target.with_suffix(".part"))
        os.replace(target.with_suffix(".part"), target)
    return target


class TemporaryPrefectAPI:
    """A Prefect API server for one CLI run; nothing is started when PREFECT_API_URL is set."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if os.environ.get("PREFECT_API_URL"):
            return
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        home = prefect_home()
        seed_database(home)
        env = os.environ | {
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            # Registering Prefect's block types costs 1.7 s at every start; one run needs
            # none of them (a `prefect server start` on this home registers them then).
            "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
        }
        if up_to_date(home):  # nothing to migrate: skip loading every migration to see so
            env["PREFECT_API_DATABASE_MIGRATE_ON_START"] = "false"
        # fmt: off
        self.proc = spawn(
            [
                sys.executable, "-m", "uvicorn", "--factory",
                "prefect.server.api.server:create_app",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "error",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # the terminal's Ctrl-C is for mpt, which stops it
        )
        # fmt: on
        self.url = f"http://127.0.0.1:{port}/api"
        os.environ["PREFECT_API_URL"] = self.url

    def wait(self, timeout_s: float = 60) -> None:
        if self.proc is None:
            return
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode()[-300:]
                raise RuntimeError(f"the temporary Prefect server exited: {err.strip()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the temporary Prefect server did not start in time")

    def stop(self) -> None:
        if self.proc is not None and "prefect" in sys.modules:
            # Send the run's last logs and events while the server is still there; after it
            # stops, Prefect's workers would retry for a minute and print connection errors.
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            for worker in (APILogWorker, EventsWorker):
                with contextlib.suppress(Exception):  # best effort on the way out
                    worker.drain_all(timeout=5)
        self.kill(graceful=True)

    def kill(self, graceful: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if graceful:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            else:
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        reap(self.proc)
        # Whoever called mpt in-process (a test, a notebook) keeps the API it had before.
        if os.environ.get("PREFECT_API_URL") == self.url:
            del os.environ["PREFECT_API_URL"]


if __name__ == "__main__":
    print(f"Prefect database template: {build_template()}")
