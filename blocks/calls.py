"""How every network provider call fails and is retried, in one place.

Provider clients (LLMs, voices, stock footage, downloads) raise `ProviderError` with one of
four kinds; `with_retries` retries the transient kind with exponential backoff and jitter,
honouring Retry-After, and lets the others through at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import httpx

T = TypeVar("T")
Kind = Literal["auth", "transient", "bad_output", "fatal"]
MAX_RETRY_AFTER_S = 30.0


class ProviderError(Exception):
    """One provider call failed; `kind` decides whether to retry, skip, or give up."""

    def __init__(self, kind: Kind, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


def retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    try:
        return min(float(value), MAX_RETRY_AFTER_S) if value is not None else None
    except ValueError:
        return None


def by_status(status: int, message: str, response: Any = None) -> ProviderError:
    if status in (401, 403):
        return ProviderError("auth", f"{status} key rejected: {message}")
    if status == 429:
        return ProviderError("transient", f"429 rate limited: {message}", retry_after(response))
    if status >= 500 or status == 408:
        return ProviderError("transient", f"{status} server error: {message}")
    return ProviderError("fatal", f"{status}: {message}")


def classify(exc: BaseException) -> ProviderError:
    """Map any SDK's exception onto the four kinds the chain acts on."""
    import google.genai.errors as genai_errors
    import ollama
    import openai

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError("transient", "timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError("transient", "connection failed")
    if isinstance(exc, openai.APIStatusError):
        return by_status(exc.status_code, short(exc.message), exc.response)
    if isinstance(exc, genai_errors.APIError):
        return by_status(exc.code, short(exc.message or str(exc)), exc.response)
    if isinstance(exc, ollama.ResponseError):
        return by_status(exc.status_code, short(exc.error))
    name = type(exc).__name__
    if isinstance(exc, TimeoutError) or "Timeout" in name:
        return ProviderError("transient", "timed out")
    if isinstance(exc, ConnectionError) or name in {
        "ConnectError",
        "RemoteProtocolError",
        "ReadError",
        "NetworkError",
    }:
        return ProviderError("transient", "connection failed")
    return ProviderError("fatal", f"{name}: {short(str(exc))}")


def short(text: str) -> str:
    return " ".join(str(text).split())[:200]


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def http_client() -> httpx.Client:
    """This process's one HTTP client (thread-safe), for every provider call and download:
    a new client per request costs 20 ms of CPU loading the CA certificates, more than a
    stock search on a fast network, and keeps no connection alive."""
    global _client
    with _client_lock:
        if _client is None or _client.is_closed:
            _client = httpx.Client()
        return _client


def http_request(method: str, url: str, timeout_s: float, **kwargs: Any) -> httpx.Response:
    """One HTTP request with connect and read timeouts; any non-200 becomes a ProviderError."""
    timeout = httpx.Timeout(timeout_s, connect=min(5.0, timeout_s))
    try:
        response = http_client().request(method, url, timeout=timeout, **kwargs)
    except httpx.TimeoutException:
        raise ProviderError("transient", "timed out") from None
    except httpx.TransportError as exc:
        raise ProviderError("transient", f"connection failed ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise by_status(response.status_code, short(response.text), response)
    return response


def backoff_s(attempt: int, base_s: float, error: ProviderError) -> float:
    """Retry-After when the provider sent one, else exponential backoff with jitter."""
    if error.retry_after is not None:
        return error.retry_after
    return base_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)


def with_retries(call: Callable[[], T], attempts: int, base_s: float) -> T:
    """`call()`, retried on transient ProviderErrors; other errors pass through at once."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ProviderError as exc:
            if exc.kind != "transient" or attempt == attempts:
                raise
            time.sleep(backoff_s(attempt, base_s, exc))
    raise AssertionError("attempts must be at least 1")
