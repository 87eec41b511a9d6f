"""Create the work pools, our provider block types and the deployments of prefect.yaml on
the Prefect API in PREFECT_API_URL. Safe to run again: pools are updated in place, block
types re-registered, deployments replaced.

    python -m deployments.setup
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from prefect.blocks.core import Block
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


def block_types() -> list[type[Block]]:
    """Every provider block type a user can save on the UI's Blocks page."""
    from blocks.llm import LLM_BLOCK_TYPES
    from blocks.stock import STOCK_BLOCK_TYPES
    from blocks.tts import TTS_BLOCK_TYPES

    return [*LLM_BLOCK_TYPES, *TTS_BLOCK_TYPES, *STOCK_BLOCK_TYPES]


async def register_block_types() -> None:
    """Register our block types (and their schemas) so the UI lists them before any is saved:
    what `prefect block register -m MODULE` does, for all our modules at once."""
    async with get_client() as client:
        for block in block_types():
            await block.aregister_type_and_schema(client=client)


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
    asyncio.run(register_block_types())
    from blocks.storage import ensure_result_block

    ensure_result_block()  # with S3 storage: the block every run's results go to
    deploy()
    print(
        "work pools cpu, gpu and batch; provider block types; deployments video/video, "
        "video/audio, video/subtitles, batch/batch and upscale/upscale: ready"
    )


if __name__ == "__main__":
    main()
