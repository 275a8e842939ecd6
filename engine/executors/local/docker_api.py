"""The few Docker Engine API calls a docker task needs, over the daemon's unix socket (httpx).

Paths carry a fixed API version (`/v1.41`, Docker 20.10): every daemon since accepts it and
it has all the fields used here (NanoCpus, PidsLimit, Mounts). Errors come back as
`{"message": ...}`; each becomes a `DockerError` sentence, except a missing image on create,
which is `ImageMissing` because klippfisk never pulls and the user has to.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from klippfisk.engine.executors.base import ExecutorError
from klippfisk.engine.settings import DockerSettings

__all__ = [
    "API_VERSION",
    "ContainerState",
    "DockerClient",
    "DockerError",
    "ImageMissing",
    "Sink",
    "demultiplex",
]

API_VERSION = "1.41"
UNIX_SCHEME = "unix://"
PING_TIMEOUT_SECONDS = 2.0
FRAME_HEADER = struct.Struct(">BxxxL")  # stream type (0 stdin, 1 stdout, 2 stderr), size


class Sink(Protocol):
    """Where one log stream goes: a file, or a capped one."""

    def write(self, data: bytes, /) -> int: ...


class DockerError(ExecutorError):
    """The daemon refused a call or could not be reached."""


class ImageMissing(DockerError):
    """The image is not on the Docker host (and klippfisk does not pull)."""


@dataclass(frozen=True)
class ContainerState:
    """What inspect says about a container that has stopped."""

    exit_code: int
    oom_killed: bool


class DockerClient:
    """One daemon's Engine API; thread-safe (a kill may come from the watchdog's thread)."""

    def __init__(self, socket_path: Path, settings: DockerSettings) -> None:
        self.socket_path = socket_path
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(socket_path)),
            base_url=f"http://docker/v{API_VERSION}",
            timeout=settings.api_timeout_seconds,
        )

    @classmethod
    def locate(cls, settings: DockerSettings) -> DockerClient | None:
        """The daemon DOCKER_HOST names, else the default socket if it exists, else None."""
        if settings.host:
            if not settings.host.startswith(UNIX_SCHEME):
                raise DockerError(
                    f"DOCKER_HOST={settings.host} is not a unix socket; the local executor "
                    "talks to Docker only over unix:///path/to/docker.sock. Point DOCKER_HOST "
                    "at the daemon's socket, or unset it."
                )
            return cls(Path(settings.host[len(UNIX_SCHEME) :]), settings)
        if settings.default_socket.is_socket():
            return cls(settings.default_socket, settings)
        return None

    def close(self) -> None:
        self._http.close()

    def ping(self) -> bool:
        """Whether the daemon answers (`GET /_ping` is 200 "OK"), asked before every docker
        task, so a hung daemon may hold it up for PING_TIMEOUT_SECONDS only."""
        try:
            response = self._http.get("/_ping", timeout=PING_TIMEOUT_SECONDS)
        except httpx.TransportError:
            return False
        return response.status_code == 200

    def create(self, name: str, config: dict[str, Any]) -> str:
        """Create a container (not started); returns its id."""
        response = self._request("POST", "/containers/create", params={"name": name}, json=config)
        if response.status_code == 404:
            image = config.get("Image", "")
            raise ImageMissing(
                f"Image {image!r} is not on the Docker host and klippfisk never pulls images; "
                f"run `docker pull {image}` on that host first."
            )
        return str(self._checked(response, "create the container", 201).json()["Id"])

    def start(self, container: str) -> None:
        self._checked(self._request("POST", f"/containers/{container}/start"), "start it", 204)

    def wait(self, container: str) -> int:
        """Block until the container stops (no time limit: the caller's watchdog kills it)."""
        response = self._request(
            "POST", f"/containers/{container}/wait", timeout=httpx.Timeout(None)
        )
        body = self._checked(response, "wait for it", 200).json()
        return int(body["StatusCode"])

    def kill(self, container: str) -> None:
        """SIGKILL the container; one that has stopped meanwhile (409) is fine."""
        response = self._request("POST", f"/containers/{container}/kill")
        if response.status_code != 409:
            self._checked(response, "kill it", 204)

    def inspect(self, container: str) -> ContainerState:
        state = self._checked(
            self._request("GET", f"/containers/{container}/json"), "inspect it", 200
        ).json()["State"]
        return ContainerState(int(state.get("ExitCode", 0)), bool(state.get("OOMKilled")))

    def logs(self, container: str, stdout: Sink, stderr: Sink) -> None:
        """Copy the container's stdout and stderr (one multiplexed stream) into two files."""
        params = {"stdout": "true", "stderr": "true", "follow": "false"}
        with self._http.stream("GET", f"/containers/{container}/logs", params=params) as response:
            if response.status_code != 200:
                response.read()
                self._checked(response, "read its logs", 200)
            targets = {1: stdout, 2: stderr}
            for stream, chunk in demultiplex(response.iter_bytes()):
                target = targets.get(stream)
                if target is not None:
                    target.write(chunk)

    def remove(self, container: str) -> None:
        """Remove the container and its anonymous volumes, running or not."""
        response = self._request(
            "DELETE", f"/containers/{container}", params={"force": "true", "v": "true"}
        )
        if response.status_code != 404:
            self._checked(response, "remove it", 204)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise DockerError(
                f"The Docker daemon at {self.socket_path} stopped answering "
                f"({type(exc).__name__}); check that it runs (`docker info`)."
            ) from None

    def _checked(self, response: httpx.Response, what: str, expected: int) -> httpx.Response:
        if response.status_code == expected:
            return response
        try:
            message = str(response.json().get("message", ""))
        except ValueError:
            message = response.text[:200]
        raise DockerError(
            f"Docker could not {what} ({response.status_code}: {message or 'no message'}); "
            "check the daemon's log (`journalctl -u docker`)."
        )


def demultiplex(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """Split Docker's multiplexed log stream into (stream type, payload) frames.

    Each frame is an 8-byte header (stream type, three zero bytes, big-endian size) and the
    payload; HTTP chunks do not follow frame borders, so bytes are buffered across them.
    """
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= FRAME_HEADER.size:
            stream, size = FRAME_HEADER.unpack_from(buffer)
            end = FRAME_HEADER.size + size
            if len(buffer) < end:
                break
            yield stream, bytes(buffer[FRAME_HEADER.size : end])
            del buffer[:end]
    if buffer:
        raise DockerError(
            f"Docker's log stream ended inside a frame ({len(buffer)} bytes left over); the "
            "output may be cut short. Check the daemon's log."
        )
