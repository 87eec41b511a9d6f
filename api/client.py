"""The one client of the REST facade: the only code that knows its URLs and headers. The web
UI, the MCP server and the CLI's service commands all talk to the service through it.

Every call answers with the facade's own models (`spec.service`) or raises `FacadeError`
with the facade's one-line `detail` and its status (0 when nothing answered). It imports
nothing of the project but `spec`, so the web UI stays a pure HTTP client.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, TypeAdapter

from spec.runs import Kind, RunState
from spec.scenes import Storyboard, StoryboardEdit
from spec.service import (
    BatchCheck,
    BatchCreated,
    BatchOut,
    BatchPage,
    CampaignIn,
    CampaignOut,
    HealthOut,
    ProviderCheckOut,
    ReviewIn,
    RunCreated,
    RunOut,
    RunPage,
    ServiceConfig,
    UploadOut,
    VoiceOut,
    WhoAmI,
)

DEFAULT_API_URL = "http://127.0.0.1:8080"
# POST paths of the kinds of run (v1's names).
CREATE_PATHS: dict[str, str] = {"video": "/videos", "audio": "/audios", "subtitles": "/subtitles"}
M = TypeVar("M")


class FacadeError(Exception):
    """The facade refused (its one-line reason and HTTP status) or did not answer (status 0)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    @property
    def bad_input(self) -> bool:
        """The request was refused for what it asked (not for the service's state)."""
        return self.status in (400, 404, 409, 413, 422)


def api_url_from_env(variable: str = "MPT_API_URL") -> str:
    return os.environ.get(variable, DEFAULT_API_URL).rstrip("/")


_pool_lock = threading.Lock()
_pools: dict[float, httpx.Client] = {}


def _pool(timeout_s: float) -> httpx.Client:
    """One connection pool per process (httpx.Client is thread-safe): a new client per call
    builds its TLS context afresh, 24 ms of CPU each."""
    with _pool_lock:
        client = _pools.get(timeout_s)
        if client is None:
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            client = _pools[timeout_s] = httpx.Client(timeout=timeout_s, limits=limits)
        return client


class Facade:
    """The REST facade for one caller (their key stays in this object; it is never put in a
    URL or a log)."""

    def __init__(self, base_url: str, key: str = "", timeout_s: float = 30.0) -> None:
        self.base = base_url.rstrip("/")
        self.key = key
        self.timeout_s = timeout_s
        self.calls = 0  # requests sent: the tests count them (polling stays under 1 a second)

    def _send(
        self,
        method: str,
        url: str,
        keyed: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        self.calls += 1
        headers = dict(headers or {})
        if keyed and self.key:
            headers["X-API-Key"] = self.key
        try:
            return _pool(self.timeout_s).request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise FacadeError(
                f"the service at {self.base} did not answer ({type(exc).__name__})"
            ) from None

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, f"{self.base}/api/v1{path}", **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail") or response.reason_phrase
            except (ValueError, AttributeError):
                detail = response.text[:200] or response.reason_phrase
            raise FacadeError(str(detail), response.status_code)
        return response.json() if response.content else None

    def _as(self, kind: type[M], method: str, path: str, **kwargs: Any) -> M:
        return TypeAdapter(kind).validate_python(self._json(method, path, **kwargs))

    # --- who and what -------------------------------------------------------------------
    def whoami(self) -> WhoAmI:
        return self._as(WhoAmI, "GET", "/whoami")

    def config(self) -> ServiceConfig:
        return self._as(ServiceConfig, "GET", "/config")

    def voices(self) -> list[VoiceOut]:
        return self._as(list[VoiceOut], "GET", "/voices")

    def health(self) -> HealthOut:
        """200 or 503, both with the checks; no key needed."""
        response = self._send("GET", f"{self.base}/api/v1/health", keyed=False)
        try:
            return HealthOut.model_validate(response.json())
        except ValueError:
            status = response.status_code
            raise FacadeError(f"health answered {status}", status) from None

    def providers(self) -> list[ProviderCheckOut]:
        return self._as(list[ProviderCheckOut], "GET", "/providers")

    # --- runs ---------------------------------------------------------------------------
    def create(
        self, kind: Kind, spec: dict[str, Any], idempotency_key: str | None = None
    ) -> RunCreated:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._as(RunCreated, "POST", CREATE_PATHS[kind], json=spec, headers=headers)

    def run(self, run_id: UUID | str) -> RunOut:
        return self._as(RunOut, "GET", f"/tasks/{run_id}")

    def runs(self, state: RunState | None = None, limit: int = 50, offset: int = 0) -> RunPage:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if state:
            params["state"] = state
        return self._as(RunPage, "GET", "/tasks", params=params)

    def cancel(self, run_id: UUID | str) -> RunCreated:
        return self._as(RunCreated, "DELETE", f"/tasks/{run_id}")

    def review(self, run_id: UUID | str, approved: bool, note: str = "") -> RunOut:
        body = ReviewIn(approved=approved, note=note).model_dump()
        return self._as(RunOut, "POST", f"/tasks/{run_id}/review", json=body)

    def storyboard(self, run_id: UUID | str) -> Storyboard:
        return self._as(Storyboard, "GET", f"/tasks/{run_id}/storyboard")

    def set_storyboard(self, run_id: UUID | str, edit: StoryboardEdit) -> RunOut:
        """Change scenes of a storyboard awaiting review, and let the run go on."""
        body = edit.model_dump(mode="json", exclude_none=True)
        return self._as(RunOut, "PUT", f"/tasks/{run_id}/storyboard", json=body)

    def upload(self, name: str, data: bytes, folder: str | None = None) -> UploadOut:
        form = {"folder": folder} if folder else {}
        return self._as(UploadOut, "POST", "/uploads", files={"file": (name, data)}, data=form)

    def fetch(self, url: str) -> bytes:
        """A file by its signed URL (absolute, or relative to the facade)."""
        response = self._send("GET", self.absolute(url), keyed=False)
        if response.status_code >= 400:
            raise FacadeError(
                f"the file could not be fetched ({response.status_code})", response.status_code
            )
        return response.content

    def absolute(self, url: str) -> str:
        """A facade URL as anyone can fetch it (relative ones are the facade's)."""
        return f"{self.base}{url}" if url.startswith("/") else url

    # --- batches and campaigns ----------------------------------------------------------
    def _rows(
        self,
        kind: type[M],
        path: str,
        rows: list[dict[str, Any]] | None,
        file: tuple[str, bytes] | None,
        fields: dict[str, Any],
    ) -> M:
        """Rows as JSON, or a file of them as a multipart upload (its fields as text)."""
        if file is not None:
            form = {k: _form_value(v) for k, v in fields.items()}
            return self._as(kind, "POST", path, files={"file": file}, data=form)
        return self._as(kind, "POST", path, json={"rows": rows, **fields})

    def check_batch(
        self,
        rows: list[dict[str, Any]] | None,
        file: tuple[str, bytes] | None,
        defaults: dict[str, Any],
    ) -> BatchCheck:
        return self._rows(BatchCheck, "/batches/check", rows, file, {"defaults": defaults})

    def create_batch(
        self,
        rows: list[dict[str, Any]] | None,
        file: tuple[str, bytes] | None,
        defaults: dict[str, Any],
        name: str = "batch",
        skip_invalid: bool = False,
    ) -> BatchCreated:
        fields = {"defaults": defaults, "name": name, "skip_invalid": skip_invalid}
        return self._rows(BatchCreated, "/batches", rows, file, fields)

    def batch(self, batch_id: UUID | str) -> BatchOut:
        return self._as(BatchOut, "GET", f"/batches/{batch_id}")

    def batches(self, limit: int = 20, offset: int = 0) -> BatchPage:
        return self._as(BatchPage, "GET", "/batches", params={"limit": limit, "offset": offset})

    def cancel_batch(self, batch_id: UUID | str) -> BatchOut:
        return self._as(BatchOut, "DELETE", f"/batches/{batch_id}")

    def campaigns(self) -> list[CampaignOut]:
        return self._as(list[CampaignOut], "GET", "/campaigns")

    def add_campaign(self, campaign: CampaignIn | dict[str, Any]) -> CampaignOut:
        body = campaign if isinstance(campaign, dict) else _body(campaign)
        return self._as(CampaignOut, "POST", "/campaigns", json=body)

    def set_campaign(self, name: str, active: bool) -> CampaignOut:
        return self._as(CampaignOut, "PATCH", f"/campaigns/{name}", json={"active": active})

    def remove_campaign(self, name: str) -> None:
        self._json("DELETE", f"/campaigns/{name}")


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _body(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)
