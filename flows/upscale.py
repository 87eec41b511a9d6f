"""Where upscaling runs: the `upscale/upscale` deployment on work pool `gpu` when a worker
of that pool is online (the video flow waits for its run), else in-process: on CUDA when
there is a GPU, else on the CPU with a compact model and a warning (or, with
MPT_UPSCALE__REQUIRE_GPU, not at all).
"""

from __future__ import annotations

import logging

from prefect import flow

from blocks.errors import StageError, TransientError
from blocks.settings import get_settings
from blocks.storage import result_storage
from tasks.materials import Materials
from tasks.shared_files import restore
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
    """Upscale clips with `model` ('auto' or a weights file's name) on this worker's device.
    With S3 storage the clips come from the bucket when this machine does not have them, and
    each report names the clip as the video's machine knows it."""
    local = [restore(job) or job for job in jobs]
    report = upscale_jobs(local, model, where=f"pool {get_settings().upscale.pool}")
    original = {str(mine.path): job.path for mine, job in zip(local, jobs, strict=True)}
    clips = [
        c.model_copy(update={"source": original.get(str(c.source), c.source)}) for c in report.clips
    ]
    return report.model_copy(update={"clips": clips})


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
    except (httpx.HTTPError, OSError) as exc:  # no such pool (404), or no API (yet): here
        log.info("pool %s not asked (%s): upscaling in this process", pool, exc)
        return False
    return any(w.status == WorkerStatus.ONLINE for w in workers)


def upscale_materials(
    materials: Materials, size: tuple[int, int], model: str, fit: str = "cover"
) -> tuple[Materials, UpscaleReport | None]:
    """The materials with every clip smaller than the frame upscaled; None when no clip
    needed it."""
    jobs = plan(materials, size, fit)
    if not jobs:
        return materials, None
    pool = get_settings().upscale.pool
    if pool_online(pool):
        report = _on_pool(jobs, model, pool)
        report = _restored(report) or report  # made on another machine: its files from S3
    else:
        report = upscale_jobs(jobs, model)
    return apply(materials, report), report


def _restored(report: UpscaleReport) -> UpscaleReport | None:
    try:
        return restore(report)
    except (StageError, TransientError) as exc:
        raise StageError(f"the upscaled clips are not readable from storage: {exc}") from None


def _cancel(run_id: object) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run_id, Cancelling(), force=True)
    except Exception as exc:  # noqa: BLE001 - the timeout is what the user hears of
        log.warning("could not cancel the upscale run %s: %s", run_id, exc)


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
        _cancel(run.id)
        raise StageError(
            f"the upscale run on pool {pool} did not finish within "
            f"{get_settings().upscale.timeout_s:.0f} s (MPT_UPSCALE__TIMEOUT_S)"
        )
    if not state.is_completed():
        why = (state.message or state.name or "failed").splitlines()[0]
        raise StageError(f"the upscale run on pool {pool} failed: {why}")
    report = state.result()
    return report if isinstance(report, UpscaleReport) else UpscaleReport.model_validate(report)
