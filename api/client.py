"""The one module that knows the facade's URLs and headers: the web UI talks HTTP, nothing else.

Every call returns the facade's JSON or raises `FacadeError` with its one-line `detail`, so a
page shows that line and nothing more.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8080"


class FacadeError(Exception):
    """The facade refused (its one-line reason) or did not answer."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def default_api_url() -> str:
    return os.environ.get("MPT_WEBUI__API_URL", DEFAULT_API_URL).rstrip("/")


class Facade:
    """The REST facade for one signed-in user (their key stays in this object and the
    Streamlit session; it is never put in a URL or a log)."""

    def __init__(self, base_url: str, key: str, timeout_s: float = 30.0) -> None:
        self.base = base_url.rstrip("/")
        self.key = key
        self.timeout_s = timeout_s
        self.calls = 0  # requests sent: the tests count them (polling stays under 1 a second)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.calls += 1
        try:
            response = httpx.request(
                method,
                f"{self.base}/api/v1{path}",
                headers={"X-API-Key": self.key},
                timeout=self.timeout_s,
                **kwargs,
            )
        except httpx.HTTPError as exc:
            raise FacadeError(
                f"the service at {self.base} did not answer ({type(exc).__name__})"
            ) from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail") or response.reason_phrase
            except ValueError:
                detail = response.text[:200] or response.reason_phrase
            raise FacadeError(str(detail), response.status_code)
        if not response.content:
            return None
        return response.json()

    # --- who and what -------------------------------------------------------------------
    def whoami(self) -> dict[str, Any]:
        return self._request("GET", "/whoami")

    def config(self) -> dict[str, Any]:
        return self._request("GET", "/config")

    def voices(self) -> list[dict[str, Any]]:
        return self._request("GET", "/voices")

    def health(self) -> dict[str, Any]:
        """GET /health: 200 or 503, both with the checks."""
        try:
            response = httpx.get(f"{self.base}/api/v1/health", timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise FacadeError(
                f"the service at {self.base} did not answer ({type(exc).__name__})"
            ) from None
        return response.json()

    def providers(self) -> list[dict[str, Any]]:
        return self._request("GET", "/providers")

    # --- tasks --------------------------------------------------------------------------
    def create(self, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
        """kind: 'videos', 'audios' or 'subtitles'."""
        return self._request("POST", f"/{kind}", json=spec)

    def task(self, task_id: str) -> dict[str, Any]:
        return self._request("GET", f"/tasks/{task_id}")

    def tasks(self, state: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if state:
            params["state"] = state
        return self._request("GET", "/tasks", params=params)

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/tasks/{task_id}")

    def review(self, task_id: str, approved: bool, note: str) -> dict[str, Any]:
        return self._request(
            "POST", f"/tasks/{task_id}/review", json={"approved": approved, "note": note}
        )

    def upload(self, name: str, data: bytes, folder: str | None = None) -> dict[str, Any]:
        form = {"folder": folder} if folder else {}
        return self._request("POST", "/uploads", files={"file": (name, data)}, data=form)

    def fetch(self, url: str) -> bytes:
        """A file by its signed URL (absolute, or relative to the facade)."""
        full = url if url.startswith("http") else f"{self.base}{url}"
        try:
            response = httpx.get(full, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise FacadeError(f"the service did not answer ({type(exc).__name__})") from None
        if response.status_code >= 400:
            raise FacadeError(f"the file could not be fetched ({response.status_code})")
        return response.content

    # --- batches and campaigns ----------------------------------------------------------
    def _rows_request(
        self, path: str, rows: list[dict] | None, file: tuple[str, bytes] | None, fields: dict
    ) -> Any:
        if file is not None:
            form = {k: (v if isinstance(v, str) else _json(v)) for k, v in fields.items()}
            return self._request("POST", path, files={"file": file}, data=form)
        return self._request("POST", path, json={"rows": rows, **fields})

    def check_batch(
        self, rows: list[dict] | None, file: tuple[str, bytes] | None, defaults: dict
    ) -> dict[str, Any]:
        return self._rows_request("/batches/check", rows, file, {"defaults": defaults})

    def create_batch(
        self,
        rows: list[dict] | None,
        file: tuple[str, bytes] | None,
        defaults: dict,
        name: str,
        skip_invalid: bool,
    ) -> dict[str, Any]:
        fields = {"defaults": defaults, "name": name, "skip_invalid": skip_invalid}
        if file is not None:
            fields["skip_invalid"] = "true" if skip_invalid else "false"
        return self._rows_request("/batches", rows, file, fields)

    def batch(self, batch_id: str) -> dict[str, Any]:
        return self._request("GET", f"/batches/{batch_id}")

    def batches(self) -> dict[str, Any]:
        return self._request("GET", "/batches")

    def campaigns(self) -> list[dict[str, Any]]:
        return self._request("GET", "/campaigns")

    def add_campaign(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/campaigns", json=body)

    def set_campaign(self, name: str, active: bool) -> dict[str, Any]:
        return self._request("PATCH", f"/campaigns/{name}", json={"active": active})

    def remove_campaign(self, name: str) -> None:
        self._request("DELETE", f"/campaigns/{name}")


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
