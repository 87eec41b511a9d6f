"""Where upscaling runs: the `upscale/upscale` deployment on work pool `gpu` when a worker
of that pool is online (the video flow waits for its run), else in-process: on CUDA when
there is a GPU, else on the CPU with a compact model and a warning (or, with
MPT_UPSCALE__REQUIRE_GPU, not at all).
"""

from __future__ import annotations

import logging

from prefect import flow

from blocks.errors import StageError
from blocks.settings import get_settings
from blocks.storage import result_storage
from tasks.materials import Materials
from tasks.upscale_stage import UpscaleJob, UpscaleReport, apply, plan, upscale_jobs

log = logging.getLogger(__name__)

DEPLOYMENT = "upscale/upscale"


@flow(
    name="upscale",
    log_prints=True,
    validate_parameters=True,
    persist_result=True,
    result_storage=result_storage(),
)
def upscale_flow(jobs: list[UpscaleJob], model: str = "auto") -> UpscaleReport:
    """Upscale clips with `model` ('auto' or a weights file's name) on this worker's device."""
    return upscale_jobs(jobs, model, where=f"pool {get_settings().upscale.pool}")


def pool_online(pool: str) -> bool:
    """Whether a worker of `pool` has sent a heartbeat lately (Prefect marks it ONLINE)."""
    if not pool:
        return False
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import WorkerStatus
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            workers = client.read_workers_for_work_pool(pool)
    except ObjectNotFound:
        return False
    except httpx.HTTPStatusError as exc:  # the sync client answers a missing pool so
        if exc.response.status_code == 404:
            return False
        raise
    return any(w.status == WorkerStatus.ONLINE for w in workers)


def upscale_materials(
    materials: Materials, size: tuple[int, int], model: str
) -> tuple[Materials, UpscaleReport | None]:
    """The materials with every clip smaller than the frame upscaled; None when no clip
    needed it."""
    jobs = plan(materials, size)
    if not jobs:
        return materials, None
    pool = get_settings().upscale.pool
    report = _on_pool(jobs, model, pool) if pool_online(pool) else upscale_jobs(jobs, model)
    return apply(materials, report), report


def _on_pool(jobs: list[UpscaleJob], model: str, pool: str) -> UpscaleReport:
    """A run of the upscale deployment, as a subflow of this run, waited for."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    log.info("upscaling %d clip(s) on pool %s", len(jobs), pool)
    try:
        run = run_deployment(
            DEPLOYMENT,
            parameters={"jobs": [j.model_dump(mode="json") for j in jobs], "model": model},
            timeout=get_settings().upscale.timeout_s,
            as_subflow=True,
        )
    except ObjectNotFound:
        log.warning("no deployment %s: upscaling here instead", DEPLOYMENT)
        return upscale_jobs(jobs, model)
    state = run.state
    if state is None or not state.is_final():
        raise StageError(
            f"the upscale run on pool {pool} did not finish within "
            f"{get_settings().upscale.timeout_s:.0f} s (MPT_UPSCALE__TIMEOUT_S)"
        )
    if not state.is_completed():
        why = (state.message or state.name or "failed").splitlines()[0]
        raise StageError(f"the upscale run on pool {pool} failed: {why}")
    report = state.result()
    return report if isinstance(report, UpscaleReport) else UpscaleReport.model_validate(report)
