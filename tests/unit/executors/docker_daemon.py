"""A Docker-Engine-API-shaped server on a unix socket, for tests on machines with no Docker.

Run as its own process: `python docker_daemon.py SOCKET JOURNAL IMAGES_JSON [MIN-MAX]`, MIN
and MAX the API minor versions it takes (41-43 by default; a path outside them gets the 400
Docker's version middleware sends, as Docker 29 does below 1.44). It speaks
HTTP/1.1 over the socket and answers the calls the local executor makes with the status
codes and bodies of the Engine API's swagger (moby api/swagger.yaml, v1.41): _ping,
containers/create (201 {Id, Warnings}; 404 {message} for an unknown image; 409 for a name
in use), start (204, 304), wait (200 {StatusCode, Error}), kill (204, 409 not running),
logs (the multiplexed stream: 8-byte header per frame), attach (hijacked: 101, then a frame
per read of the process's pipes until it ends), json (inspect, with State.OOMKilled), DELETE
(204, 404), and /version.

A "container" is a host process: it cannot mount or unshare, so a bind mount is emulated
by rewriting the mount's target to its source in the command line and working directory,
and the memory limit by watching the process group's resident memory and killing it (and
reporting OOMKilled) past the limit, as the kernel's cgroup would. The network mode and the
pids limit are recorded, not enforced. Every request is appended to JOURNAL as a JSON line
so tests can check what was asked of the daemon.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socketserver
import struct
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

VERSIONED = re.compile(r"^/v1\.(\d+)(/.*)$")
MINORS = (41, 43)  # the API versions it takes by default; an unversioned path gets the top
NETWORKS = {"bridge": "bridge", "host": "host", "none": "null"}  # a default daemon's
PAGE = os.sysconf("SC_PAGE_SIZE")


class Container:
    """One created container and, once started, its process."""

    def __init__(self, name: str, config: dict[str, Any], image: dict[str, Any]) -> None:
        self.id = secrets.token_hex(32)
        self.name, self.config, self.image = name, config, image
        self.proc: subprocess.Popen[bytes] | None = None
        self.frames: list[tuple[int, bytes]] = []
        self.lock = threading.Condition()  # notified on each frame, and at the end
        self.oom_killed = False
        self.exit_code = 0
        self.exited = threading.Event()

    def argv(self) -> list[str]:
        entrypoint = self.config.get("Entrypoint") or self.image.get("Entrypoint") or []
        cmd = self.config["Cmd"] if "Cmd" in self.config else self.image.get("Cmd") or []
        return [self._rewrite(a) for a in [*entrypoint, *cmd]]

    def _rewrite(self, text: str) -> str:
        mounts = self.config.get("HostConfig", {}).get("Mounts") or []
        for mount in sorted(mounts, key=lambda m: -len(m["Target"])):
            text = text.replace(mount["Target"], mount["Source"])
        return text

    def start(self) -> None:
        env = dict(item.split("=", 1) for item in self.config.get("Env") or [])
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        workdir = self._rewrite(self.config.get("WorkingDir") or "/")
        self.proc = subprocess.Popen(
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=workdir,
            start_new_session=True,
        )
        readers = [
            threading.Thread(target=self._read, args=(stream, pipe), daemon=True)
            for stream, pipe in ((1, self.proc.stdout), (2, self.proc.stderr))
        ]
        for reader in readers:
            reader.start()
        threading.Thread(target=self._reap, args=(readers,), daemon=True).start()
        limit = int(self.config.get("HostConfig", {}).get("Memory") or 0)
        if limit:
            threading.Thread(target=self._watch_memory, args=(limit,), daemon=True).start()

    def _read(self, stream: int, pipe: Any) -> None:
        for chunk in iter(lambda: pipe.read1(4096), b""):
            with self.lock:
                self.frames.append((stream, chunk))
                self.lock.notify_all()

    def _reap(self, readers: list[threading.Thread]) -> None:
        assert self.proc is not None
        code = self.proc.wait()
        for reader in readers:
            reader.join()
        self.exit_code = code if code >= 0 else 128 - code
        self.end()

    def end(self) -> None:
        with self.lock:
            self.exited.set()
            self.lock.notify_all()

    def _watch_memory(self, limit: int) -> None:
        while not self.exited.wait(0.02):
            if self._group_rss() > limit:
                self.oom_killed = True
                self.kill()
                return

    def _group_rss(self) -> int:
        assert self.proc is not None
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid:  # process group
                total += int(fields[21]) * PAGE
        return total

    @property
    def running(self) -> bool:
        return self.proc is not None and not self.exited.is_set()

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def inspect(self) -> dict[str, Any]:
        status = "running" if self.running else ("exited" if self.exited.is_set() else "created")
        config = {k: v for k, v in self.config.items() if k != "HostConfig"}
        return {
            "Id": self.id,
            "Name": f"/{self.name}",
            "State": {
                "Status": status,
                "Running": self.running,
                "OOMKilled": self.oom_killed,
                "ExitCode": self.exit_code,
                "Pid": self.proc.pid if self.running and self.proc else 0,
                "Error": "",
            },
            "Config": config,
            "HostConfig": self.config.get("HostConfig", {}),
        }


class Daemon(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(
        self, socket_path: str, journal: Path, images: dict[str, Any], minors: tuple[int, int]
    ) -> None:
        super().__init__(socket_path, Handler)
        self.journal, self.images, self.minors = journal, images, minors
        self.containers: dict[str, Container] = {}
        self.lock = threading.Lock()

    def find(self, ref: str) -> Container | None:
        with self.lock:
            for container in self.containers.values():
                if ref in (container.id, container.name) or (
                    len(ref) >= 12 and container.id.startswith(ref)
                ):
                    return container
        return None

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock, self.journal.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Daemon

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the journal is the record."""

    def address_string(self) -> str:
        return "unix"

    def _dispatch(self) -> None:
        method = self.command
        parts = urlsplit(self.path)
        match = VERSIONED.match(parts.path)
        oldest, newest = self.server.minors
        self.minor = int(match.group(1)) if match else newest
        path = match.group(2) if match else parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._error(400, "invalid JSON body")
        self.server.record({"method": method, "path": path, "query": query, "body": body})
        if self.minor < oldest:
            return self._error(
                400,
                f"client version 1.{self.minor} is too old. Minimum supported API version is "
                f"1.{oldest}, please upgrade your client to a newer version",
            )
        if self.minor > newest:
            return self._error(
                400,
                f"client version 1.{self.minor} is too new. Maximum supported API version is "
                f"1.{newest}",
            )
        if path == "/_ping":
            return self._send(
                200, b"OK", "text/plain; charset=utf-8", {"Api-Version": f"1.{newest}"}
            )
        if path == "/version":
            return self._json(
                200,
                {"Version": "shaped", "ApiVersion": f"1.{newest}", "MinAPIVersion": f"1.{oldest}"},
            )
        if method == "POST" and path == "/containers/create":
            return self._create(query.get("name", ""), body)
        if method == "GET" and path.startswith("/networks/"):
            name = path.removeprefix("/networks/")
            if name in NETWORKS:
                return self._json(200, {"Name": name, "Driver": NETWORKS[name]})
            return self._error(404, f"network {name} not found")
        found = re.fullmatch(r"/containers/([^/]+)(/[a-z]+)?", path)
        if not found:
            return self._error(404, f"page not found: {path}")
        container = self.server.find(found.group(1))
        if container is None:
            return self._error(404, f"No such container: {found.group(1)}")
        action = (method, found.group(2) or "")
        handlers = {
            ("POST", "/start"): self._start,
            ("POST", "/wait"): self._wait,
            ("POST", "/kill"): self._kill,
            ("POST", "/attach"): self._attach,
            ("GET", "/logs"): lambda c: self._logs(c, query),
            ("GET", "/json"): lambda c: self._json(200, c.inspect()),
            ("DELETE", ""): lambda c: self._delete(c, query),
        }
        handler = handlers.get(action)
        if handler is None:
            return self._error(405, f"{method} {path} is not supported here")
        return handler(container)

    do_GET = do_HEAD = do_POST = do_DELETE = _dispatch

    def _create(self, name: str, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("Image"), str):
            return self._error(400, "config cannot be empty in order to create a container")
        image = self.server.images.get(body["Image"])
        if image is None:
            return self._error(404, f"No such image: {body['Image']}")
        for mount in (body.get("HostConfig") or {}).get("Mounts") or []:
            if mount.get("Type") != "bind" or not Path(mount.get("Source", "")).exists():
                return self._error(
                    400,
                    f'invalid mount config for type "bind": bind source path does not exist: '
                    f"{mount.get('Source')}",
                )
        if name and self.server.find(name):
            return self._error(409, f'Conflict. The container name "/{name}" is already in use')
        container = Container(name or secrets.token_hex(6), body, image)
        with self.server.lock:
            self.server.containers[container.id] = container
        self._json(201, {"Id": container.id, "Warnings": []})

    def _start(self, container: Container) -> None:
        if container.proc is not None:
            return self._send(304, b"", "text/plain")
        try:
            container.start()
        except OSError as exc:
            return self._error(400, f"failed to create task for container: {exc}")
        self._send(204, b"", "text/plain")

    def _wait(self, container: Container) -> None:
        if container.proc is not None:
            container.exited.wait()
        self._json(200, {"StatusCode": container.exit_code, "Error": None})

    def _kill(self, container: Container) -> None:
        if not container.running:
            return self._error(409, f"Container {container.id} is not running")
        container.kill()
        self._send(204, b"", "text/plain")

    def _logs(self, container: Container, query: dict[str, str]) -> None:
        wanted = {1: query.get("stdout") in ("1", "true"), 2: query.get("stderr") in ("1", "true")}
        if not any(wanted.values()):
            return self._error(400, "Bad parameters: you must choose at least one stream")
        with container.lock:
            frames = [(s, chunk) for s, chunk in container.frames if wanted[s]]
        body = b"".join(struct.pack(">BxxxL", s, len(chunk)) + chunk for s, chunk in frames)
        # The framing is the same either way; API 1.42 gave it its own media type.
        media = "multiplexed-stream" if self.minor >= 42 else "raw-stream"
        self._send(200, body, f"application/vnd.docker.{media}")

    def _attach(self, container: Container) -> None:
        """As dockerd answers an Upgrade: 101, then the frames as the process writes them,
        then the connection closes when it ends (or is removed unstarted)."""
        self.wfile.write(
            b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        )
        self.wfile.flush()
        self.close_connection = True
        sent = 0
        while True:
            with container.lock:
                container.lock.wait_for(
                    lambda sent=sent: len(container.frames) > sent or container.exited.is_set()
                )
                frames, done = container.frames[sent:], container.exited.is_set()
            sent += len(frames)
            self.wfile.write(b"".join(struct.pack(">BxxxL", s, len(c)) + c for s, c in frames))
            self.wfile.flush()
            if done:
                return

    def _delete(self, container: Container, query: dict[str, str]) -> None:
        if container.running:
            if query.get("force") not in ("1", "true"):
                return self._error(409, "You cannot remove a running container. Stop it first")
            container.kill()
            container.exited.wait()
        with self.server.lock:
            del self.server.containers[container.id]
        container.end()  # an attach to a container never started ends here
        self._send(204, b"", "text/plain")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"message": message})

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status not in (204, 304) and self.command != "HEAD":
            self.wfile.write(body)


def main() -> None:
    socket_path, journal, images = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    oldest, newest = (int(m) for m in sys.argv[4].split("-")) if len(sys.argv) > 4 else MINORS
    server = Daemon(socket_path, journal, images, (oldest, newest))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    for container in list(server.containers.values()):
        container.kill()


if __name__ == "__main__":
    main()
