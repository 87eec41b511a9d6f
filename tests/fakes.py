"""Local fake provider servers on 127.0.0.1 that speak the providers' real wire formats.

A test queues the responses a route should give (status, JSON body, headers, delay); the
real client library is pointed at the server's base URL and every request is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict → JSON; bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class FakeServer:
    """Routes match by method and path prefix; each route serves its queue, then its last."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[Request] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(
                    Request(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                reply = server._next(self.command, self.path)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = reply.body
                if isinstance(payload, dict | list):
                    payload = json.dumps(payload).encode()
                elif isinstance(payload, str):
                    payload = payload.encode()
                payload = payload or b""
                try:
                    self.send_response(reply.status)
                    headers = {"content-type": "application/json"} | reply.headers
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = do_PUT = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def route(self, method: str, path_prefix: str, *replies: Reply) -> None:
        self.routes[(method, path_prefix)] = list(replies)

    def _next(self, method: str, path: str) -> Reply:
        for (m, prefix), queue in self.routes.items():
            if m == method and path.split("?")[0].startswith(prefix):
                return queue.pop(0) if len(queue) > 1 else queue[0]
        return Reply(404, {"error": {"message": f"no fake route for {method} {path}"}})

    def hits(self, path_prefix: str) -> list[Request]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- the providers' real response shapes ---------------------------------------------------


def openai_chat(content: str, model: str = "gpt-4o-mini") -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 42, "completion_tokens": 64, "total_tokens": 106},
    }


def openai_error(status: int, message: str, code: str) -> Reply:
    kind = {401: "invalid_request_error", 429: "requests", 500: "server_error"}.get(status, "error")
    return Reply(status, {"error": {"message": message, "type": kind, "param": None, "code": code}})


def gemini_reply(text: str) -> dict:
    return {
        "candidates": [
            {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 42,
            "candidatesTokenCount": 64,
            "totalTokenCount": 106,
        },
        "modelVersion": "gemini-2.0-flash",
    }


def gemini_error(status: int, message: str, state: str) -> Reply:
    return Reply(status, {"error": {"code": status, "message": message, "status": state}})


def ollama_reply(text: str, model: str = "llama3.2") -> dict:
    return {
        "model": model,
        "created_at": "2026-11-26T12:00:00.000000Z",
        "message": {"role": "assistant", "content": text},
        "done": True,
        "done_reason": "stop",
        "total_duration": 1_000_000,
        "load_duration": 1000,
        "prompt_eval_count": 42,
        "prompt_eval_duration": 1000,
        "eval_count": 64,
        "eval_duration": 1000,
    }


SCRIPT_JSON = json.dumps(
    {
        "title": "Why coffee wakes you up",
        "paragraphs": [
            "Coffee beans grow on small trees in the hills near the equator.",
            "**Caffeine** blocks the signals that make you feel tired. ☕",
            "That is why a morning cup feels like a switch turning on.",
        ],
    }
)
TERMS_JSON = json.dumps({"terms": ["coffee beans", "morning coffee", "coffee farm"]})
