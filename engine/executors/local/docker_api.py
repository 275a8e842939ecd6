"""The few Docker Engine API calls a docker task needs, over the daemon's unix socket (httpx).

Paths carry the API version negotiated with the daemon on first contact: the highest both
sides speak (`GET /_ping` gives the daemon's, `GET /version` its oldest), so Docker 20.10 gets
1.41 and Docker 29, which refuses anything below 1.44, gets a version it takes. A daemon
outside our range is an error naming both versions, never "no daemon". Errors come back as
`{"message": ...}`; each becomes a `DockerError` sentence, except a missing image on create,
which is `ImageMissing` (docker_pull decides whether to pull it). Output comes
through attach on a plain socket, read a megabyte at a time and split into frames here
(`demultiplex`): frames may be a line each, too many for an HTTP read apiece.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from klippfisk.engine.executors.base import ExecutorError
from klippfisk.engine.settings import DockerSettings

__all__ = [
    "API_VERSIONS",
    "Attached",
    "ContainerState",
    "DockerClient",
    "DockerError",
    "ImageMissing",
    "Sink",
    "demultiplex",
]

# The Engine API versions we speak, oldest and newest. 1.41 (Docker 20.10) is the oldest with
# every field used here and the one CI runs against (a real dockerd 20.10); 1.43 is spoken to
# the shaped test server. Up to 1.52 (Docker 29) the calls and fields used here keep their
# shape in the API's version history, but no daemon that new has run them: raise the top only
# after reading that history again.
API_VERSIONS = ((1, 41), (1, 52))
UNIX_SCHEME = "unix://"
PING_TIMEOUT_SECONDS = 2.0
FRAME_HEADER = struct.Struct(">BxxxL")  # stream type (0 stdin, 1 stdout, 2 stderr), size
READ_BYTES = 1 << 20  # one recv of an attached stream: many frames at once, not one per read


class Sink(Protocol):
    """Where one log stream goes: a file, or a capped one."""

    def write(self, data: bytes, /) -> int: ...


class DockerError(ExecutorError):
    """The daemon refused a call or could not be reached."""


class ImageMissing(DockerError):
    """The image is not on the Docker host."""


@dataclass(frozen=True)
class ContainerState:
    """What inspect says about a container that has stopped."""

    exit_code: int
    oom_killed: bool


class DockerClient:
    """One daemon's Engine API; thread-safe (a kill may come from the watchdog's thread)."""

    def __init__(self, socket_path: Path, settings: DockerSettings) -> None:
        self.socket_path = socket_path
        self.timeout = settings.api_timeout_seconds
        self.version: str | None = None  # negotiated on first contact
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(socket_path)),
            base_url="http://docker",
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
        """Whether the daemon answers (`GET /_ping`, unversioned), asked before every docker
        task, so a hung daemon may hold it up for PING_TIMEOUT_SECONDS only. A daemon that
        answers but refuses, or speaks no version we do, raises: it is there, and a silent
        fallback to the host would hide it."""
        try:
            response = self._http.get("/_ping", timeout=PING_TIMEOUT_SECONDS)
        except httpx.TransportError:
            return False
        if response.status_code != 200:
            raise DockerError(
                f"The Docker daemon at {self.socket_path} answers /_ping with "
                f"{response.status_code} ({response.text[:200]!r}); check the daemon's log."
            )
        if self.version is None:
            self.version = self._negotiate(response.headers.get("API-Version"))
        return True

    def _negotiate(self, daemon_max: str | None) -> str:
        """The highest API version both we and the daemon speak, or an error naming both."""
        if daemon_max is None:
            daemon_max = str(self._version_info().get("ApiVersion", "1.0"))
        ours_min, ours_max = API_VERSIONS
        theirs_max = _parse_version(daemon_max)
        if theirs_max < ours_min:
            raise DockerError(
                f"The Docker daemon at {self.socket_path} speaks Engine API up to {daemon_max}; "
                f"klippfisk needs {_format_version(ours_min)} or newer (Docker 20.10+). "
                "Upgrade Docker on that host."
            )
        if theirs_max <= ours_max:
            return daemon_max.strip()
        theirs_min = str(self._version_info().get("MinAPIVersion", "1.0"))
        if _parse_version(theirs_min) > ours_max:
            raise DockerError(
                f"The Docker daemon at {self.socket_path} speaks Engine API {theirs_min} to "
                f"{daemon_max} only; klippfisk speaks {_format_version(ours_min)} to "
                f"{_format_version(ours_max)}. Upgrade klippfisk, or run an older Docker."
            )
        return _format_version(ours_max)

    def _version_info(self) -> dict[str, Any]:
        """`GET /version`, unversioned: the daemon's newest and oldest API versions."""
        try:
            response = self._http.get("/version")
        except httpx.TransportError as exc:
            raise DockerError(
                f"The Docker daemon at {self.socket_path} stopped answering "
                f"({type(exc).__name__}); check that it runs (`docker info`)."
            ) from None
        return dict(self._checked(response, "tell its version", 200).json())

    def create(self, name: str, config: dict[str, Any]) -> str:
        """Create a container (not started); returns its id."""
        response = self._request("POST", "/containers/create", params={"name": name}, json=config)
        if response.status_code == 404:
            image = config.get("Image", "")
            raise ImageMissing(
                f"Image {image!r} is not on the Docker host and pulling is off "
                f"(KLIPPFISK_EXECUTOR__PULL=never); run `docker pull {image}` on that host "
                "first, or allow pulls."
            )
        return str(self._checked(response, "create the container", 201).json()["Id"])

    def pull(self, image: str, tag: str) -> Iterator[dict[str, Any]]:
        """Pull `image` (`POST /images/create`): the daemon's progress, a JSON object per
        line, as it comes. A refusal before the stream starts is a DockerError; one during it
        is a line with "error" (under HTTP 200), left to the caller to judge."""
        params = {"fromImage": image, "tag": tag}
        path = self._versioned("/images/create")
        try:
            with self._http.stream("POST", path, params=params) as response:
                if response.status_code != 200:  # refused at once: no such image, no registry
                    response.read()
                    raise DockerError(_message(response) or f"HTTP {response.status_code}")
                for line in response.iter_lines():
                    if line.strip():
                        yield dict(json.loads(line))
        except ValueError:
            raise DockerError(f"the daemon's progress on {image}:{tag} was not JSON") from None
        except httpx.TransportError as exc:
            raise DockerError(
                f"The Docker daemon at {self.socket_path} stopped answering while pulling "
                f"{image}:{tag} ({type(exc).__name__}); check that it runs (`docker info`)."
            ) from None

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

    def user(self, container: str) -> str:
        """The user the container will run as (its image's USER unless overridden; "" is
        root), as Docker writes it: name or uid, optionally `:group` or `:gid`."""
        config = (
            self._checked(self._request("GET", f"/containers/{container}/json"), "inspect it", 200)
            .json()
            .get("Config")
            or {}
        )
        return str(config.get("User") or "")

    def read_file(self, container: str, path: str) -> bytes | None:
        """One regular file of the container's filesystem (None when it has none there),
        read from the tar archive Docker sends, so it works before the container starts."""
        response = self._request("GET", f"/containers/{container}/archive", params={"path": path})
        if response.status_code == 404:
            return None
        body = self._checked(response, f"read {path} in it", 200).content
        with tarfile.open(fileobj=io.BytesIO(body)) as archive:
            member = next((m for m in archive.getmembers() if m.isfile()), None)
            extracted = archive.extractfile(member) if member is not None else None
            return extracted.read() if extracted is not None else None

    def has_network(self, name: str) -> bool:
        """Whether the daemon has the named network (one started with --bridge=none has no
        "bridge", and would start a container asking for it with no network at all)."""
        response = self._request("GET", f"/networks/{name}")
        if response.status_code == 404:
            return False
        self._checked(response, f"look up its {name} network", 200)
        return True

    def attach(self, container: str) -> Attached:
        """Attach to the container's stdout and stderr, before it starts so no byte is
        missed. The daemon hijacks the connection (101, then raw frames until the container
        ends), so this is a plain socket: httpx would hand over one HTTP chunk per read."""
        path = self._versioned(f"/containers/{container}/attach")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(str(self.socket_path))
            sock.sendall(
                f"POST {path}?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\n"
                "Content-Length: 0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode()
            )
            head, rest = _read_head(sock)
            status, headers = _parse_head(head)
            if status not in (101, 200):
                length = int(headers.get("content-length", len(rest)))
                while len(rest) < length and (more := sock.recv(READ_BYTES)):
                    rest += more
                self._checked(httpx.Response(status, content=rest), "attach to it", 101)
            sock.settimeout(None)  # the stream lasts as long as the container; the watchdog ends it
        except OSError as exc:
            sock.close()
            raise DockerError(
                f"The Docker daemon at {self.socket_path} did not let us attach "
                f"({type(exc).__name__}: {exc}); check that it runs (`docker info`)."
            ) from None
        except BaseException:
            sock.close()
            raise
        return Attached(sock, rest)

    def containers(self, label: str) -> dict[str, dict[str, str]]:
        """Every container carrying `label` (a key, or key=value), running or not: id ->
        its labels."""
        params = {"all": "true", "filters": json.dumps({"label": [label]})}
        response = self._request("GET", "/containers/json", params=params)
        listed = self._checked(response, "list containers", 200).json()
        return {str(c["Id"]): dict(c.get("Labels") or {}) for c in listed}

    def remove(self, container: str) -> None:
        """Remove the container and its anonymous volumes, running or not."""
        response = self._request(
            "DELETE", f"/containers/{container}", params={"force": "true", "v": "true"}
        )
        if response.status_code != 404:
            self._checked(response, "remove it", 204)

    def _versioned(self, path: str) -> str:
        """`path` under the negotiated API version (negotiated now if not yet)."""
        if self.version is None and not self.ping():
            raise DockerError(
                f"The Docker daemon at {self.socket_path} does not answer; check that it runs "
                "(`docker info`)."
            )
        return f"/v{self.version}{path}"

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        versioned = self._versioned(path)
        try:
            return self._http.request(method, versioned, **kwargs)
        except httpx.TransportError as exc:
            raise DockerError(
                f"The Docker daemon at {self.socket_path} stopped answering "
                f"({type(exc).__name__}); check that it runs (`docker info`)."
            ) from None

    def _checked(self, response: httpx.Response, what: str, expected: int) -> httpx.Response:
        if response.status_code == expected:
            return response
        message = _message(response) or "no message"
        raise DockerError(
            f"Docker could not {what} ({response.status_code}: {message}); "
            "check the daemon's log (`journalctl -u docker`)."
        )


class Attached:
    """A container's stdout and stderr as it writes them, from `DockerClient.attach`."""

    def __init__(self, sock: socket.socket, first: bytes) -> None:
        self._sock = sock
        self._first = first

    def copy(self, stdout: Sink, stderr: Sink) -> None:
        """Copy both streams into their sinks until the container ends (or is killed).

        Reading goes on past a full sink, the bytes dropped: a container whose reader stopped
        would block on its next write and run into its deadline instead of finishing."""
        targets = {1: stdout, 2: stderr}
        for stream, payload in demultiplex(self._chunks()):
            target = targets.get(stream)
            if target is not None:
                target.write(payload)

    def close(self) -> None:
        self._sock.close()

    def _chunks(self) -> Iterator[bytes]:
        if self._first:
            yield self._first
        try:
            while chunk := self._sock.recv(READ_BYTES):
                yield chunk
        except OSError as exc:
            raise DockerError(
                f"The container's output stream broke ({type(exc).__name__}: {exc}); the "
                "output may be cut short. Check the daemon's log."
            ) from None


def _message(response: httpx.Response) -> str:
    """The daemon's reason in an error response (`{"message": ...}`)."""
    try:
        message = str(response.json().get("message", ""))
    except ValueError:
        message = response.text[:200]
    return message


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The response's status line and headers, and whatever came after them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the daemon closed the connection before answering")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionResetError(f"not an HTTP response: {status_line[:80]!r}")
    headers = {}
    for line in lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(parts[1]), headers


def demultiplex(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """Split Docker's multiplexed stream into (stream type, payload) frames.

    Each frame is an 8-byte header (stream type, three zero bytes, big-endian size) and the
    payload; reads do not follow frame borders, so bytes are buffered across them (and
    dropped from the buffer once per read, not once per frame: frames may be a line each).
    """
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        offset = 0
        while len(buffer) - offset >= FRAME_HEADER.size:
            stream, size = FRAME_HEADER.unpack_from(buffer, offset)
            start = offset + FRAME_HEADER.size
            if len(buffer) < start + size:
                break
            yield stream, bytes(buffer[start : start + size])
            offset = start + size
        del buffer[:offset]
    if buffer:
        raise DockerError(
            f"Docker's log stream ended inside a frame ({len(buffer)} bytes left over); the "
            "output may be cut short. Check the daemon's log."
        )


def _parse_version(text: str) -> tuple[int, int]:
    major, _, minor = text.strip().partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        raise DockerError(
            f"The Docker daemon reports an API version {text!r} that is not major.minor."
        ) from None


def _format_version(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"
