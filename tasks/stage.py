"""The one decorator every stage uses: caching, retries and result persistence.

Kept thin on purpose: each stage module holds a plain function that does the work and a
`@stage(...)` wrapper around it, so engines are testable without Prefect.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Task, task
from prefect.cache_policies import CachePolicy
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import exponential_backoff
from prefect.utilities.hashing import hash_objects
from pydantic import BaseModel

from blocks.errors import TransientError
from blocks.settings import get_settings
from blocks.storage import result_storage
from tasks.files import sha256_file
from tasks.shared_files import share

# Connection-level faults any client library may raise; provider clients map HTTP 429/5xx
# to TransientError themselves.
TRANSIENT_TYPES: tuple[type[BaseException], ...] = (TransientError, TimeoutError, ConnectionError)


def fingerprint(value: Any) -> Any:
    """A JSON-able stand-in for `value` in which every file counts by its content.

    A changed clip, font or music file therefore changes the key of each stage that reads
    it, while moving nothing else.
    """
    if isinstance(value, BaseModel):
        return {"model": type(value).__name__, "fields": fingerprint(value.model_dump())}
    if isinstance(value, Path):
        if value.is_file():
            return {"file": sha256_file(value)}
        if value.is_dir():
            return {
                "dir": sorted(
                    (str(p.relative_to(value)), sha256_file(p))
                    for p in value.rglob("*")
                    if p.is_file() and not p.name.startswith(".")
                )
            }
        return {"missing": str(value)}
    if isinstance(value, dict):
        return {str(k): fingerprint(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [fingerprint(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    return value


@dataclass
class ContentInputs(CachePolicy):
    """Key on the task's inputs, with files hashed by content rather than by name."""

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return hash_objects(fingerprint(inputs or {}), raise_on_failure=True)


@dataclass
class ModuleSource(CachePolicy):
    """Key on the task's name and the source of the whole module that defines it.

    Prefect's TASK_SOURCE hashes only the decorated function; here the engine it calls lives
    in the same module, and a change to the engine must invalidate the cache too.
    """

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        module = inspect.getmodule(task_ctx.task.fn)
        # The task's name too: two stages of one module given the same inputs (terms and
        # social both take the script) must not share a cache entry.
        return hash_objects(task_ctx.task.name, inspect.getsource(module), raise_on_failure=True)


STAGE_CACHE = ModuleSource() + ContentInputs()


def retry_on_transient(task: Task, task_run: TaskRun, state: State) -> bool:
    """Retry only faults that may pass; bad input and hard failures end the task at once."""
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            state.result(raise_on_failure=True)
        except BaseException as raised:  # noqa: BLE001 - we only classify it
            exc = raised
    return isinstance(exc, TRANSIENT_TYPES)


def stage(name: str, **options: Any) -> Callable[[Callable[..., Any]], Task]:
    """`@task` with the stage conventions: content-keyed cache, transient-only retries
    with exponential backoff and jitter, results persisted (PREFECT_RESULTS_LOCAL_STORAGE_PATH,
    which defaults to the work dir)."""
    settings = get_settings()
    defaults: dict[str, Any] = {
        "name": name,
        # With S3 storage, results go to its saved block: any worker finds them.
        "result_storage": result_storage(),
        "cache_policy": STAGE_CACHE,
        "persist_result": True,
        "retries": settings.retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=settings.retry_base_delay_s)
        if settings.retry_base_delay_s
        else 0,
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": retry_on_transient,
    }

    def decorate(fn: Callable[..., Any]) -> Task:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            # With S3 storage the files go up inside the task: a storage fault is retried
            # like any transient one, and the result is saved only once its files are there.
            share(result)
            return result

        return task(**(defaults | options))(run)

    return decorate


def stage_dir(stage_name: str, *key_parts: Any) -> Path:
    """A folder for one stage's outputs, named by the fingerprint of what made them.

    The same inputs map to the same folder, so a cached result keeps pointing at its files.
    """
    key = hash_objects(fingerprint(list(key_parts)), raise_on_failure=True)
    path = get_settings().work_dir / "stages" / stage_name / key[:24]
    path.mkdir(parents=True, exist_ok=True)
    return path
