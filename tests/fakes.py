"""Local fake provider servers on 127.0.0.1 that speak the providers' real wire formats.

A test queues the responses a route should give (status, JSON body, headers, delay); the
real client library is pointed at the server's base URL and every request is recorded.
"""

from __future__ import annotations

import json
import re
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
    ranges: bool = False  # honour "Range: bytes=N-" with 206, as file servers do
    cut_after: int | None = None  # announce the full length, send this many bytes, hang up


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
                if callable(reply):  # a reply that depends on what was asked
                    reply = reply(server.requests[-1])
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = reply.body
                if isinstance(payload, dict | list):
                    payload = json.dumps(payload).encode()
                elif isinstance(payload, str):
                    payload = payload.encode()
                payload = payload or b""
                status, extra = reply.status, {}
                wanted = self.headers.get("range", "")
                if reply.ranges and wanted.startswith("bytes="):
                    start = int(wanted[6:].split("-")[0])
                    extra["content-range"] = f"bytes {start}-{len(payload) - 1}/{len(payload)}"
                    status, payload = 206, payload[start:]
                try:
                    self.send_response(status)
                    headers = {"content-type": "application/json"} | reply.headers | extra
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    if reply.cut_after is not None:
                        self.wfile.write(payload[: reply.cut_after])
                        self.wfile.flush()
                        self.close_connection = True
                        return
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

    def route(self, method: str, path_prefix: str, *replies: Reply | Any) -> None:
        """Queue replies for a route; a callable reply is given the request and answers."""
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


def storyboard_json(prompt: str) -> str:
    """The storyboard request answered: as many entries as the prompt has scenes, taking
    TERMS_JSON's terms in turn (so the video's terms are those three, in order)."""
    count = int(re.search(r"has (\d+) scenes", prompt).group(1))
    terms = json.loads(TERMS_JSON)["terms"]
    return json.dumps({"scenes": [{"terms": [terms[i % len(terms)]]} for i in range(count)]})


def pexels_search(videos: list[dict]) -> dict:
    return {
        "page": 1,
        "per_page": 15,
        "total_results": len(videos),
        "url": "https://www.pexels.com/search/videos/coffee/",
        "videos": videos,
    }


def pexels_video(vid: int, link: str, duration: int = 6, w: int = 1080, h: int = 1920) -> dict:
    return {
        "id": vid,
        "width": w,
        "height": h,
        "duration": duration,
        "url": f"https://www.pexels.com/video/coffee-{vid}/",
        "image": f"https://images.pexels.com/videos/{vid}/pictures/preview-0.jpg",
        "user": {"id": 7, "name": "Ana Author", "url": "https://www.pexels.com/@ana"},
        "video_files": [
            {
                "id": vid * 10,
                "quality": "sd",
                "file_type": "video/mp4",
                "width": w // 4,
                "height": h // 4,
                "fps": 25,
                "link": link + "?sd",
            },
            {
                "id": vid * 10 + 1,
                "quality": "hd",
                "file_type": "video/mp4",
                "width": w,
                "height": h,
                "fps": 25,
                "link": link,
            },
            {
                "id": vid * 10 + 2,
                "quality": "uhd",
                "file_type": "video/mp4",
                "width": w * 2,
                "height": h * 2,
                "fps": 25,
                "link": link + "?uhd",
            },
        ],
        "video_pictures": [{"id": 1, "picture": "https://images.pexels.com/p.jpg", "nr": 0}],
    }


def pixabay_search(hits: list[dict]) -> dict:
    return {"total": len(hits), "totalHits": len(hits), "hits": hits}


def pixabay_hit(vid: int, link: str, duration: int = 8, w: int = 1920, h: int = 1080) -> dict:
    def rendition(scale: float) -> dict:
        return {
            "url": f"{link}?{scale}",
            "width": int(w * scale),
            "height": int(h * scale),
            "size": 1000,
            "thumbnail": "https://cdn.pixabay.com/t.jpg",
        }

    return {
        "id": vid,
        "pageURL": f"https://pixabay.com/videos/coffee-{vid}/",
        "type": "film",
        "tags": "coffee, cup, morning",
        "duration": duration,
        "videos": {
            "large": rendition(1.0),
            "medium": rendition(0.66),
            "small": rendition(0.5),
            "tiny": rendition(0.33),
        },
        "views": 10,
        "downloads": 5,
        "likes": 1,
        "comments": 0,
        "user_id": 3,
        "user": "pix_user",
        "userImageURL": "",
    }
