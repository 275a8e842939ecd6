"""A loopback stand-in for the bot's PDS, at the public-internet boundary (see the class)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

__all__ = ["StandInServer"]


class StandInServer:
    """A loopback stand-in for the bot's PDS, at the public-internet boundary: the XRPC calls
    the bot makes, and a job file to fetch. Tests set what it refuses and read what it got."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.session_expired = False  # listNotifications answers 401
        self.drop_logins = False  # createSession: the connection is cut (a network blip)
        self.refuse_posts: Callable[[str], bool] = lambda text: False  # -> 500
        self.posts: dict[str, dict[str, Any]] = {}  # rkey -> record
        self.calls: list[str] = []
        self.refused: list[str] = []
        self.files: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.address = f"127.0.0.1:{self._http.server_address[1]}"
        self.url = f"http://{self.address}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def replies(self) -> list[str]:
        with self._lock:
            return [record["text"] for record in self.posts.values()]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any] | bytes) -> None:
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                with server._lock:
                    server.calls.append(path)
                if path in server.files:
                    self._send(200, server.files[path])
                elif path.endswith("listNotifications"):
                    if server.session_expired:
                        self._send(401, {"error": "ExpiredToken", "message": "expired"})
                    else:
                        self._send(200, {"notifications": server.notifications})
                elif path.endswith("getRecord"):
                    rkey = parse_qs(query)["rkey"][0]
                    if rkey in server.posts:
                        uri = f"at://did:plc:bot/app.bsky.feed.post/{rkey}"
                        self._send(200, {"uri": uri, "value": server.posts[rkey]})
                    else:
                        self._send(400, {"error": "RecordNotFound", "message": "not found"})
                else:
                    self._send(404, {"error": "MethodNotImplemented", "message": path})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)))
                with server._lock:
                    server.calls.append(self.path)
                if self.path.endswith("createSession") and server.drop_logins:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                elif self.path.endswith("createRecord"):
                    text = body["record"]["text"]
                    if server.refuse_posts(text):
                        with server._lock:
                            server.refused.append(text)
                        self._send(500, {"error": "InternalServerError", "message": "down"})
                        return
                    with server._lock:
                        server.posts[body["rkey"]] = body["record"]
                    uri = f"at://did:plc:bot/app.bsky.feed.post/{body['rkey']}"
                    self._send(200, {"uri": uri, "cid": "bafyreplycid"})
                else:
                    self._send(401, {"error": "AuthenticationRequired", "message": "no"})

        return Handler
