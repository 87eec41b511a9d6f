"""The facade's calls to Prefect, each with a deadline: create a run (as `flows.runs` says),
read its state (in our words, cached briefly), cancel or resume it, and campaigns' schedules."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Cancelling

from flows.runs import NewRun, RunInfo, create, info_of


class PrefectUnavailable(Exception):
    """The Prefect API did not answer (or not in time)."""


class Runs:
    """Prefect access with a deadline on every call and a short-lived cache of run states.

    Many readers of one run cost the Prefect API one request per `state_ttl_s`: a state older
    than that is still answered while one background read refreshes it (stale-while-
    revalidate), so readers never queue behind Prefect and never stampede it together.
    """

    def __init__(self, api_url: str, timeout_s: float, state_ttl_s: float) -> None:
        self.api_url = api_url
        self.timeout_s = timeout_s
        self.state_ttl_s = state_ttl_s
        self.client = PrefectClient(api_url, httpx_settings={"timeout": timeout_s})
        self._states: dict[UUID, tuple[float, RunInfo]] = {}
        self._reading: dict[UUID, asyncio.Task[RunInfo | None]] = {}

    async def __aenter__(self) -> Runs:
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.__aexit__(*exc)

    async def _call(self, coro: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await coro
        except ObjectNotFound:
            raise
        except (TimeoutError, httpx.HTTPError, OSError) as exc:
            raise PrefectUnavailable(f"Prefect API at {self.api_url} did not answer") from exc

    async def create(self, new: NewRun) -> UUID:
        """A new flow run on the kind's deployment (see `flows.runs.NewRun`)."""
        return await self._call(create(new, self.client))

    async def info(self, flow_run_id: UUID) -> RunInfo | None:
        """The run's state in our words; None when Prefect does not know the run."""
        cached = self._states.get(flow_run_id)
        age = time.monotonic() - cached[0] if cached else None
        if cached and age is not None and age < self.state_ttl_s:
            return cached[1]
        task = self._reading.get(flow_run_id)
        if task is None:
            task = asyncio.create_task(self._read(flow_run_id))
            self._reading[flow_run_id] = task
            task.add_done_callback(lambda t: self._done(flow_run_id, t))
        if cached and age is not None and age < 10 * self.state_ttl_s:
            return cached[1]  # recent enough to answer now; the read above refreshes it
        return await asyncio.shield(task)

    def _done(self, flow_run_id: UUID, task: asyncio.Task[RunInfo | None]) -> None:
        self._reading.pop(flow_run_id, None)
        if not task.cancelled():
            task.exception()  # a failed background refresh only leaves the old state in place

    async def _read(self, flow_run_id: UUID) -> RunInfo | None:
        try:
            flow_run = await self._call(self.client.read_flow_run(flow_run_id))
        except ObjectNotFound:
            return None
        info = info_of(flow_run)
        if len(self._states) > 10_000:  # a bounded cache: old entries simply go
            self._states.clear()
        self._states[flow_run_id] = (time.monotonic(), info)
        return info

    async def cancel(self, flow_run_id: UUID) -> bool:
        """Stop a run that is still going; False when it has already ended."""
        flow_run = await self._call(self.client.read_flow_run(flow_run_id))
        state = flow_run.state
        if state is None or state.is_final():
            return False
        if state.type == StateType.SCHEDULED:
            # No worker holds it yet: nothing to kill, so it can be cancelled outright.
            new_state = Cancelled(message="cancelled through the API")
        else:
            # A worker runs it: Cancelling asks the worker to stop the process.
            new_state = Cancelling(message="cancelled through the API")
        await self._call(self.client.set_flow_run_state(flow_run_id, new_state, force=True))
        self._states.pop(flow_run_id, None)
        return True

    async def resume(self, flow_run_id: UUID, decision: dict[str, Any]) -> str | None:
        """Resume a run suspended for review with the decision; why not, if Prefect refused."""
        try:
            result = await self._call(self.client.resume_flow_run(flow_run_id, run_input=decision))
        except ObjectNotFound:
            return "the run is gone from Prefect"
        self._states.pop(flow_run_id, None)
        if result.status.value != "ACCEPT":
            return getattr(result.details, "reason", None) or "Prefect refused to resume it"
        return None

    async def add_schedule(
        self, deployment: str, slug: str, schedule: Any, active: bool, parameters: dict[str, Any]
    ) -> UUID:
        """A schedule of its own on the deployment, with these parameters."""
        from prefect.client.schemas.actions import DeploymentScheduleCreate

        found = await self._call(self.client.read_deployment_by_name(deployment))
        made = await self._call(
            self.client.create_deployment_schedules(
                found.id,
                [
                    DeploymentScheduleCreate(
                        schedule=schedule, active=active, parameters=parameters, slug=slug
                    )
                ],
            )
        )
        return made[0].id

    async def update_schedule(
        self, deployment: str, schedule_id: UUID, active: bool | None, schedule: Any = None
    ) -> None:
        found = await self._call(self.client.read_deployment_by_name(deployment))
        changes: dict[str, Any] = {"active": active} if active is not None else {}
        if schedule is not None:
            changes["schedule"] = schedule
        await self._call(self.client.update_deployment_schedule(found.id, schedule_id, **changes))

    async def delete_schedule(self, deployment: str, schedule_id: UUID) -> None:
        found = await self._call(self.client.read_deployment_by_name(deployment))
        with contextlib.suppress(ObjectNotFound):  # gone already: what was asked for
            await self._call(self.client.delete_deployment_schedule(found.id, schedule_id))

    async def schedules(self, deployment: str) -> list[Any]:
        found = await self._call(self.client.read_deployment_by_name(deployment))
        return list(await self._call(self.client.read_deployment_schedules(found.id)))

    async def healthy(self) -> str:
        try:
            async with asyncio.timeout(self.timeout_s):
                failure = await self.client.api_healthcheck()
        except TimeoutError:
            return f"no answer in {self.timeout_s:g} s"
        return "ok" if failure is None else f"unreachable: {type(failure).__name__}"
