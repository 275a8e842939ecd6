"""The fetch guard against real HTTP servers on loopback (allowed only by explicit entry)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from klippfisk.adapters.bluesky.fetch_guard import FetchError, FetchPolicy, fetch

JOB = b"Type: batch\nTasks: []\n"


class Handler(BaseHTTPRequestHandler):
    """/job.yaml, /big, /page.html, /to/<path> (redirect), /loop (redirects to itself)."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(
        self, status: int, body: bytes, ctype: str = "application/yaml", **headers: str
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/job.yaml":
            self._send(200, JOB, "application/yaml; charset=utf-8")
        elif self.path == "/big":
            self._send(200, b"x" * 5000)
        elif self.path == "/page.html":
            self._send(200, b"<html></html>", "text/html")
        elif self.path.startswith("/to/"):
            self._send(302, b"", Location=self.path[len("/to/") :])
        elif self.path == "/loop":
            self._send(302, b"", Location="/loop")
        else:
            self._send(404, b"no")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def allowing(*entries: str, **limits: object) -> FetchPolicy:
    return FetchPolicy(allow=frozenset(entries), **limits)  # type: ignore[arg-type]


def test_an_allowed_server_serves_the_job_file(server: str) -> None:
    got = fetch(f"http://{server}/job.yaml", allowing(server))
    assert got.content == JOB
    assert got.content_type == "application/yaml"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/job.yaml",
        "http://localhost:9/job.yaml",
        "http://[::1]:9/job.yaml",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/job.yaml",
        "http://192.168.0.1/job.yaml",
        "http://100.100.100.200/job.yaml",
        "http://[::ffff:127.0.0.1]/job.yaml",
        "http://[64:ff9b::a01:203]/job.yaml",
        "http://0.0.0.0/job.yaml",
    ],
)
def test_inside_addresses_are_refused_before_connecting(url: str) -> None:
    with pytest.raises(FetchError, match="not a public address"):
        fetch(url)


def test_a_public_name_resolving_inside_is_refused() -> None:
    def dns(host: str, port: int) -> list[str]:  # the public DNS is the boundary we stand in for
        return ["93.184.215.14", "10.0.0.7"]

    with pytest.raises(FetchError, match="jobs.example.org: it is not a public address"):
        fetch("https://jobs.example.org/job.yaml", resolve=dns)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "gopher://x/"])
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(FetchError, match="Only http:// and https:// URLs are fetched"):
        fetch(url)


def test_credentials_in_the_url_are_refused(server: str) -> None:
    with pytest.raises(FetchError, match="user name or password"):
        fetch(f"http://me:secret@{server}/job.yaml", allowing(server))


def test_a_redirect_to_an_inside_address_is_refused(server: str) -> None:
    with pytest.raises(FetchError, match="169.254.169.254: it is not a public address"):
        fetch(f"http://{server}/to/http://169.254.169.254/latest/", allowing(server))


def test_the_allow_list_is_per_host_and_port_even_after_a_redirect(server: str) -> None:
    other = "127.0.0.1:1"
    with pytest.raises(FetchError, match="127.0.0.1: it is not a public address"):
        fetch(f"http://{server}/to/http://{other}/job.yaml", allowing(server))


def test_relative_redirects_are_followed_and_capped(server: str) -> None:
    assert fetch(f"http://{server}/to//job.yaml", allowing(server)).content == JOB
    with pytest.raises(FetchError, match="redirected more than 2 times"):
        fetch(f"http://{server}/loop", allowing(server, max_redirects=2))


def test_size_cap_and_content_type_and_status(server: str) -> None:
    with pytest.raises(FetchError, match="larger than 1 KiB"):
        fetch(f"http://{server}/big", allowing(server, max_bytes=1024))
    with pytest.raises(FetchError, match="serves text/html, not a job file"):
        fetch(f"http://{server}/page.html", allowing(server))
    with pytest.raises(FetchError, match="answered 404"):
        fetch(f"http://{server}/missing", allowing(server))


def test_a_server_that_never_answers_times_out() -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    entry = f"127.0.0.1:{silent.getsockname()[1]}"
    try:
        with pytest.raises(FetchError, match="did not answer in time"):
            fetch(f"http://{entry}/job.yaml", allowing(entry, read_timeout=0.3))
    finally:
        silent.close()


def test_an_unknown_host_says_so() -> None:
    with pytest.raises(FetchError, match="could not be found"):
        fetch("http://no-such-host.invalid/job.yaml")
