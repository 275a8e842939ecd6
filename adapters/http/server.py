"""Running the API app on uvicorn (foreground, a thread, a child process) and the runner.

Both bind the socket themselves before uvicorn starts, so port 0 works and the caller
learns the real address; the thread form is for embedding the API in another program (and
for tests that need a real HTTP server on 127.0.0.1 rather than a fake transport); the
child-process form is `klippfisk serve` exactly as a user starts it, for load tools.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import uvicorn

from klippfisk.engine.runner import Runner

__all__ = ["RunnerThread", "bind", "run", "running", "serve_process"]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: the system picks one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _server(app: Any, log_level: str) -> uvicorn.Server:
    config = uvicorn.Config(
        app, log_level=log_level, access_log=False, server_header=False, lifespan="on"
    )
    return uvicorn.Server(config)


def run(app: Any, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully."""
    _server(app, log_level).run(sockets=[sock])


@contextmanager
def running(app: Any, host: str = "127.0.0.1", log_level: str = "warning") -> Iterator[str]:
    """Serve `app` on a thread for the `with` block; yields its base URL."""
    sock = bind(host, 0)
    server = _server(app, log_level)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            threading.Event().wait(0.01)
        bound_host, port = sock.getsockname()[:2]
        yield f"http://{bound_host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class RunnerThread:
    """The embedded runner on its own thread, for as long as the server runs (a Background)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.halt = threading.Event()
        self.thread = threading.Thread(
            target=runner.serve, args=(self.halt,), name="klippfisk-runner", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.halt.set()
        self.thread.join(timeout=60)
        self.runner.executors.close()  # the remote executor holds an HTTP connection pool


_CLI = "import sys; from klippfisk.adapters.cli import main; sys.exit(main())"


@contextmanager
def serve_process(
    *args: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`klippfisk serve --port 0 ARGS` as a child process; yields it and its base URL.

    Waits for the "listening on" line, and on exit stops the server with SIGTERM (a
    graceful shutdown, as a service manager would).
    """
    process = subprocess.Popen(
        [sys.executable, "-c", _CLI, "serve", "--port", "0", *args],
        env={**os.environ, **(env or {})},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"klippfisk serve did not start: {line}{process.stderr.read()}")
    # Keep reading what the server logs, or a full pipe would block it mid-request.
    drain = threading.Thread(target=process.stderr.read, name="serve-stderr", daemon=True)
    drain.start()
    try:
        yield process, line.rsplit(" ", 1)[1].strip()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
