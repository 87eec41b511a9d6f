"""Signed, short-lived URLs for published files: what a browser's <video> (which cannot send
an X-API-Key header) or an agent handing a video on can use.

A URL names one file under the output root, an expiry time and an HMAC-SHA256 of both with
MPT_API__SIGNING_KEY. It serves that file (with Range) until it expires; an expired or
altered URL answers 403. Without a configured key, each facade process makes one at start:
its URLs then stop working when it restarts (set the key for several facade processes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from urllib.parse import quote


class Signer:
    def __init__(self, key: bytes | None, ttl_s: int) -> None:
        self.key = key or secrets.token_bytes(32)
        self.ttl_s = ttl_s

    def _mac(self, path: str, expires: int) -> str:
        digest = hmac.new(self.key, f"{path}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, path: str, now: float | None = None) -> tuple[int, str]:
        """(expiry as a Unix time, signature) for a file path relative to the output root."""
        expires = int(now if now is not None else time.time()) + self.ttl_s
        return expires, self._mac(path, expires)

    def url(self, base: str, path: str) -> str:
        expires, signature = self.sign(path)
        return f"{base}/signed/{quote(path)}?expires={expires}&signature={signature}"

    def valid(self, path: str, expires: int, signature: str, now: float | None = None) -> bool:
        if expires < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self._mac(path, expires), signature)
