"""Create the work pools and the deployments of prefect.yaml on the Prefect API in
PREFECT_API_URL. Safe to run again: pools are updated in place, deployments replaced.

    python -m deployments.setup
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.workers.process import ProcessWorker

REPO_ROOT = Path(__file__).resolve().parent.parent

# pool name → concurrency limit (flow runs at once across its workers)
POOLS = {
    "cpu": int(os.environ.get("MPT_CPU_POOL_LIMIT", "2")),
    "gpu": int(os.environ.get("MPT_GPU_POOL_LIMIT", "1")),
    # Batch runs only wait for their rows (which run on `cpu`): cheap, several at once.
    "batch": int(os.environ.get("MPT_BATCH_POOL_LIMIT", "4")),
}


async def create_pools() -> None:
    template = ProcessWorker.get_default_base_job_template()
    async with get_client() as client:
        for name, limit in POOLS.items():
            await client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type="process",
                    base_job_template=template,
                    concurrency_limit=limit,
                    description=f"Process workers for the {name} stages",
                ),
                overwrite=True,
            )


def deploy() -> None:
    """`prefect deploy --all` from the repository root, so prefect.yaml's paths resolve."""
    subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=REPO_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )


def main() -> None:
    if not os.environ.get("PREFECT_API_URL"):
        sys.exit("error: set PREFECT_API_URL to the Prefect server (make stack does)")
    asyncio.run(create_pools())
    from blocks.storage import ensure_result_block

    ensure_result_block()  # with S3 storage: the block every run's results go to
    deploy()
    print(
        "work pools cpu, gpu and batch; deployments video/video, video/audio, "
        "video/subtitles, batch/batch and upscale/upscale: ready"
    )


if __name__ == "__main__":
    main()
