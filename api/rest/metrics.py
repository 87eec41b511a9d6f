"""Prometheus metrics of the facade: requests, latencies, and runs by state (read from the
catalog when scraped)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from spec.runs import RUN_STATES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
disable_created_metrics()  # `_created` series double the output and no dashboard reads them


class Metrics:
    def __init__(self) -> None:
        # A registry per app, so several apps in one process (tests) never collide.
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mpt_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mpt_http_request_duration_seconds",
            "Time to answer a request",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.runs = Gauge(
            "mpt_runs", "Runs in the catalog by state", ["state"], registry=self.registry
        )
        self.created = Counter(
            "mpt_runs_created", "Runs created through the API", ["kind"], registry=self.registry
        )
        self.rate_limited = Counter(
            "mpt_rate_limited", "Creates refused by the rate limit", registry=self.registry
        )
        self.limiter_down = Counter(
            "mpt_rate_limit_unavailable",
            "Creates let through because Redis did not answer",
            registry=self.registry,
        )

    def render(self, runs_by_state: dict[str, int]) -> bytes:
        for state in RUN_STATES:
            self.runs.labels(state).set(runs_by_state.get(state, 0))
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI (no per-request task or body copy): counts and times every HTTP request by
    its route template, so /tasks/{task_id} is one series, not one per id."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            label = getattr(route, "path_format", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, label, str(status[0])).inc()
            self.metrics.latency.labels(method, label).observe(time.perf_counter() - start)
