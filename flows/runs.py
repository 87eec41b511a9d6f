"""A run's life in one place: how a video run is started (its deployment, parameters, tags
and idempotency key; or here, in this process), and what Prefect's state of it means in our
words. The facade and a campaign's fan-out both start runs through `NewRun`; the catalog
row a run is recorded in is written with `blocks.catalog`'s statements.
"""

from __future__ import annotations

import json
from typing import Any, cast
from uuid import UUID

from pydantic import BaseModel, Field

from flows.preflight import preflight
from spec.runs import Kind, RunState, state_of
from spec.video import VideoSpec

# Deployments in prefect.yaml: one flow, stopped early for the partial kinds.
DEPLOYMENTS: dict[str, str] = {
    "video": "video/video",
    "audio": "video/audio",
    "subtitles": "video/subtitles",
}


class NewRun(BaseModel):
    """A run about to be created on its kind's deployment (any worker of its pool takes it)."""

    kind: Kind
    spec: dict[str, Any] = Field(description="The checked spec, as JSON.")
    owner: str | None = None
    out_dir: str | None = Field(None, description="Where it writes; unset: the flow decides.")
    batch_id: UUID | None = None
    campaign: str | None = None
    # Scoped to the owner, so a retried request (or batch) finds the run it made before.
    retry: list[str | int] | None = None

    @property
    def deployment(self) -> str:
        return DEPLOYMENTS[self.kind]

    @property
    def parameters(self) -> dict[str, Any]:
        out: dict[str, Any] = {"spec": self.spec, "output": self.kind}
        return out | ({"out_dir": self.out_dir} if self.out_dir else {})

    @property
    def tags(self) -> list[str]:
        tags = ["batch", f"campaign:{self.campaign}"] if self.campaign else ["api"]
        if self.owner:
            tags.append(f"owner:{self.owner}")
        if self.batch_id and not self.campaign:
            tags.append(f"batch:{self.batch_id}")
        return tags

    @property
    def idempotency_key(self) -> str | None:
        # A JSON list: no owner name can forge another owner's key.
        return json.dumps([self.owner, *self.retry]) if self.retry else None

    def _options(self) -> dict[str, Any]:
        return {
            "parameters": self.parameters,
            "timeout": 0,
            "tags": self.tags,
            "idempotency_key": self.idempotency_key,
            # Not a subflow of whoever starts it: a run that waits for review must be free
            # to suspend, and a campaign's rows run on the video pool, not the batch's.
            "as_subflow": False,
        }


async def create(new: NewRun, client: Any) -> UUID:
    """The flow run, through the facade's Prefect client; with an idempotency key seen
    before for that deployment, Prefect answers with the run it created then."""
    from prefect.deployments import arun_deployment

    run = await arun_deployment(new.deployment, client=client, **new._options())
    return run.id


def create_sync(new: NewRun) -> UUID:
    """The same, from a flow (a campaign's batch run) through Prefect's own client."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    run = run_deployment(new.deployment, **new._options())
    return cast(FlowRun, run).id  # the sync flavour of an async-dispatched call


class RunInfo(BaseModel):
    """Prefect's state of a run, in our words."""

    state: RunState
    final: bool
    paused: bool = False
    message: str | None = None


def info_of(flow_run: Any) -> RunInfo:
    """A Prefect flow run's state as ours (a run with no state yet is queued)."""
    state = flow_run.state
    if state is None:
        return RunInfo(state="queued", final=False)
    ours = state_of(state.type.value, state.message)
    return RunInfo(
        state=ours, final=state.is_final(), paused=state.is_paused(), message=state.message
    )


def run_here(
    spec: VideoSpec, out_dir: str | None = None, output: Kind = "video", checked: bool = False
) -> Any:
    """A run in this process (`mpt make`, a local batch's rows): checked against this
    machine first, unless the caller has already."""
    from flows.video import video_flow

    if not checked:
        spec = preflight(spec, output)
    return video_flow(spec, out_dir=out_dir, output=output)
