"""A real local HTTP server standing in for Slack: incoming webhooks and the Web API's chat methods.

``POST /hooks/<destination>`` behaves like an incoming webhook (200 ``ok``), ``POST /api/chat.postMessage``
and ``/api/chat.update`` like the Web API. Every accepted message is recorded with the (simulated)
time it arrived. Tests script faults per path: ``fail(path, status, body, headers)`` answers the next
request with that response instead, and ``delay(path, seconds)`` makes it slow (for timeouts).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Scripted:
    status: int
    body: str
    headers: dict[str, str]
    delay: float = 0.0


class SlackStandIn:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.messages: list[dict[str, Any]] = []
        self.requests = 0
        self._script: dict[str, deque[Scripted]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="slack-standin", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def webhook_url(self, destination: str) -> str:
        return f"{self.base_url}/hooks/{destination}"

    def start(self) -> SlackStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, path: str, status: int, body: str = "", headers: dict[str, str] | None = None,
             times: int = 1, delay: float = 0.0) -> None:
        with self._lock:
            for _ in range(times):
                self._script[path].append(Scripted(status, body, headers or {}, delay))

    def _next_script(self, path: str) -> Scripted | None:
        with self._lock:
            queue = self._script.get(path)
            return queue.popleft() if queue else None

    def _record(self, destination: str, payload: Any, method: str) -> None:
        from chalicelib.core.timeutil import iso, parse_time

        with self._lock:
            self.messages.append({"at": iso(parse_time(self.clock())), "destination": destination,
                                  "method": method, "payload": payload})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                standin.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8", errors="replace")
                scripted = standin._next_script(self.path)
                if scripted:
                    if scripted.delay:
                        time.sleep(scripted.delay)
                    self._reply(scripted.status, scripted.body, scripted.headers)
                    return
                if self.path.startswith("/hooks/"):
                    standin._record(self.path[len("/hooks/"):], _json(raw), "webhook")
                    self._reply(200, "ok", {"Content-Type": "text/plain"})
                elif self.path.startswith("/api/chat."):
                    method = self.path[len("/api/"):]
                    payload = _json(raw) if raw.strip().startswith("{") else _form(raw)
                    channel = payload.get("channel", "") if isinstance(payload, dict) else ""
                    standin._record(f"bot:{channel}", payload, method)
                    ts = payload.get("ts") if method == "chat.update" else f"{standin.clock():.6f}"
                    self._reply(200, json.dumps({"ok": True, "channel": channel, "ts": ts}),
                                {"Content-Type": "application/json"})
                else:
                    self._reply(404, "no_service", {})

            def _reply(self, status: int, body: str, headers: dict[str, str]) -> None:
                data = body.encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _json(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return {"unparsed": raw}


def _form(raw: str) -> dict[str, Any]:
    return {k: v[0] for k, v in parse_qs(raw).items()}
