"""Reading a document from a file, standard input or a URL (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import gzip
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from klippfisk.spec.errors import LoadError
from klippfisk.spec.load import LoadLimits
from klippfisk.spec.sources import read_source

JOB = b"Name: hello\nType: batch\n"
SMALL = LoadLimits(max_bytes=1000, fetch_timeout_seconds=2.0, max_redirects=3)


class _Handler(BaseHTTPRequestHandler):
    """Routes named for the behaviour each test needs from a web server."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        route = self.path.split("?")[0]
        if route == "/job.yaml":
            self._send(200, JOB)
        elif route == "/missing":
            self._send(404, b"not here")
        elif route.startswith("/hop/"):
            left = int(route.rsplit("/", 1)[1])
            self._redirect("/job.yaml" if left == 0 else f"/hop/{left - 1}")
        elif route == "/to-ftp":
            self._redirect("ftp://127.0.0.1/job.yaml")
        elif route == "/declared-huge":
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
        elif route == "/chunked-huge":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"64\r\n" + b"x" * 100 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif route == "/gzip-bomb":
            body = gzip.compress(b" " * 100_000)
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif route == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.flush()
            self.server.release.wait(10)  # type: ignore[attr-defined]
        else:
            self._send(500, b"unknown route")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.release = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.release.set()  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


def test_file_is_read_and_named_by_its_path(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes(JOB)
    assert read_source(str(path)) == (JOB, str(path))


@pytest.mark.parametrize(
    ("name", "fragment"), [("nope.yaml", "does not exist"), (".", "is a directory")]
)
def test_unreadable_paths_are_load_errors(tmp_path: Path, name: str, fragment: str) -> None:
    with pytest.raises(LoadError, match=fragment) as excinfo:
        read_source(str(tmp_path / name))
    assert excinfo.value.problems[0].hint


def test_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a" * 1001)
    with pytest.raises(LoadError, match="larger than the 1000 byte limit"):
        read_source(str(path), limits=SMALL)


def test_endless_device_is_read_only_up_to_the_limit() -> None:
    with pytest.raises(LoadError, match="larger than the 1000 byte limit"):
        read_source("/dev/zero", limits=SMALL)


def test_dash_reads_standard_input_up_to_the_limit() -> None:
    assert read_source("-", stdin=io.BytesIO(JOB)) == (JOB, "<stdin>")
    with pytest.raises(LoadError, match="byte limit"):
        read_source("-", limits=SMALL, stdin=io.BytesIO(b"x" * 2000))


@pytest.mark.parametrize("ref", ["ftp://example.org/job.yaml", "file:///etc/passwd", "s3://b/k"])
def test_other_url_schemes_are_refused(ref: str) -> None:
    with pytest.raises(LoadError, match="scheme is not supported"):
        read_source(ref)


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [("http://", "names no host"), ("https://[::1/job.yaml", "malformed"), ("", "no file name")],
)
def test_malformed_references_are_load_errors(ref: str, fragment: str) -> None:
    with pytest.raises(LoadError, match=fragment):
        read_source(ref)


def test_url_is_fetched_and_named_by_the_url(server: str) -> None:
    assert read_source(f"{server}/job.yaml") == (JOB, f"{server}/job.yaml")


def test_redirects_are_followed_up_to_the_cap(server: str) -> None:
    # /hop/N answers with N + 1 redirects before the document
    assert read_source(f"{server}/hop/2", limits=SMALL)[0] == JOB
    with pytest.raises(LoadError, match="redirects more than 3 times"):
        read_source(f"{server}/hop/3", limits=SMALL)


def test_redirect_to_another_scheme_is_refused(server: str) -> None:
    with pytest.raises(LoadError, match="redirected to a scheme other than http"):
        read_source(f"{server}/to-ftp")


def test_http_error_status_is_a_load_error(server: str) -> None:
    with pytest.raises(LoadError, match="answered 404"):
        read_source(f"{server}/missing")


@pytest.mark.parametrize("route", ["/declared-huge", "/chunked-huge", "/gzip-bomb"])
def test_oversized_downloads_stop_at_the_limit(server: str, route: str) -> None:
    with pytest.raises(LoadError, match="larger than the 1000 byte limit"):
        read_source(f"{server}{route}", limits=SMALL)


def test_stalled_server_is_a_timeout_error(server: str) -> None:
    limits = LoadLimits(fetch_timeout_seconds=0.3)
    with pytest.raises(LoadError, match="did not deliver the document"):
        read_source(f"{server}/slow", limits=limits)


def test_unreachable_host_is_a_load_error() -> None:
    # a port just released on loopback: nothing listens there
    probe = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = probe.server_address[1]
    probe.server_close()
    with pytest.raises(LoadError, match="could not be fetched"):
        read_source(f"http://127.0.0.1:{port}/job.yaml", limits=SMALL)
