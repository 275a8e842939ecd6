"""A loopback HTTP server whose downloads never finish: headers and a few bytes, then
silence until the test ends. It stands in for a slow or hostile urlDownload source."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class StallingServer:
    """Where it listens (host:port) and whether a download has begun."""

    entry: str = ""
    requested: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@contextlib.contextmanager
def stalling_server() -> Iterator[StallingServer]:
    server = StallingServer()

    class Stalls(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            server.requested.set()
            server.release.wait(30)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalls)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    server.entry = f"127.0.0.1:{httpd.server_address[1]}"
    try:
        yield server
    finally:
        server.release.set()
        httpd.shutdown()
        httpd.server_close()
