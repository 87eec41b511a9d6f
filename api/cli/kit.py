"""What every command of `mpt` shares: one-line failures, interrupts, run settings."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

import typer

INTERRUPT_GRACE_S = 1.5  # after a Ctrl-C, this long to record the run's end, then exit
interrupted_flag = threading.Event()
_exiting = threading.Lock()


def exit_interrupted(stop: Callable[[], None] | None = None) -> NoReturn:
    """Kill what is still running, say one line and exit 130 (once, from any thread)."""
    from blocks.processes import kill_all

    with _exiting:
        kill_all()
        if stop is not None:
            stop()
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)


def on_interrupt(stop: Callable[[], None]) -> None:
    """Ctrl-C or SIGTERM: KeyboardInterrupt unwinds the run (its ffmpeg is killed and its
    end recorded), and whatever still runs after INTERRUPT_GRACE_S, or at a second signal,
    is killed: one line, exit 130, nothing left behind."""

    def handler(signum: int, frame: object) -> None:
        if interrupted_flag.is_set():
            exit_interrupted(stop)
        interrupted_flag.set()
        timer = threading.Timer(INTERRUPT_GRACE_S, exit_interrupted, (stop,))
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def no_heartbeats() -> contextlib.AbstractContextManager[object]:
    """No flow-run heartbeats for a run in this process: joining their thread at the end
    costs up to 1 s a run (a third of a cached rerun), and the end of an interrupted run is
    recorded by the interrupt handler instead (a temporary server dies with the run anyway).
    Runs on workers keep theirs."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    return temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})
