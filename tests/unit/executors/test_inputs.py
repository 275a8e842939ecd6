"""Inputs: data: URLs, downloads from a real local HTTP server, allow-listed host paths."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from klippfisk.engine.inputs import InputError, decode_data_url, stage_inputs
from klippfisk.engine.settings import ExecutorSettings

PAYLOAD = b"downloaded bytes\n" * 100


class _Files(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path[len("/to/") :])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/data.csv":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        else:
            self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def allowing(server: str, **fields: object) -> ExecutorSettings:
    """Settings whose urlDownload allow-list names the test server (loopback is refused
    otherwise, as it must be for a job spec)."""
    return ExecutorSettings(url_allow=[server.removeprefix("http://")], **fields)  # type: ignore[arg-type]


def _input(kind: str, target: str, **params: object) -> dict:
    return {"Source": {"Type": kind, "Params": params}, "Target": target}


def test_data_urls_decode_base64_and_percent_encoding():
    assert decode_data_url("data:text/plain;base64,aGVsbG8=", 100) == b"hello"
    assert decode_data_url("data:,hello%20world", 100) == b"hello world"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://example.org/x", "must be a data: URL"),
        ("data:;base64,!!!notbase64", "not valid base64"),
        ("data:," + "x" * 50, "larger than the 10-byte limit"),
    ],
)
def test_bad_data_urls_are_refused_with_a_reason(url, message):
    with pytest.raises(InputError, match=message):
        decode_data_url(url, 10)


def test_url_download_lands_at_its_target(server, tmp_path):
    task = {"InputSources": [_input("urlDownload", "/inputs/data.csv", URL=f"{server}/data.csv")]}

    [mount] = stage_inputs(task, tmp_path, allowing(server))

    assert mount.target == "/inputs/data.csv"
    assert mount.read_only is True
    assert mount.source.read_bytes() == PAYLOAD


def test_url_download_errors_say_what_happened(server, tmp_path):
    missing = {"InputSources": [_input("urlDownload", "/in", URL=f"{server}/nope")]}
    with pytest.raises(InputError, match="failed with HTTP 404"):
        stage_inputs(missing, tmp_path, allowing(server))

    big = {"InputSources": [_input("urlDownload", "/in", URL=f"{server}/data.csv")]}
    with pytest.raises(InputError, match="larger than the 100-byte limit"):
        stage_inputs(big, tmp_path, allowing(server, url_max_bytes=100))


def test_url_download_from_loopback_is_refused_without_an_allow_list_entry(server, tmp_path):
    task = {"InputSources": [_input("urlDownload", "/in", URL=f"{server}/data.csv")]}

    with pytest.raises(InputError, match="127.0.0.1 is not a public address.*URL_ALLOW"):
        stage_inputs(task, tmp_path, ExecutorSettings())


@pytest.mark.parametrize(
    "inside",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:9/data.csv",
        "http://[::ffff:10.0.0.1]/data.csv",
    ],
)
def test_a_redirect_from_an_allowed_server_to_an_inside_address_is_refused(
    server, tmp_path, inside
):
    task = {"InputSources": [_input("urlDownload", "/in", URL=f"{server}/to/{inside}")]}

    with pytest.raises(InputError, match="is not a public address"):
        stage_inputs(task, tmp_path, allowing(server))


def test_a_redirect_to_another_port_of_an_allowed_host_is_refused(server, tmp_path):
    other = "http://127.0.0.1:1/data.csv"
    task = {"InputSources": [_input("urlDownload", "/in", URL=f"{server}/to/{other}")]}

    with pytest.raises(InputError, match="add 127.0.0.1:1 to KLIPPFISK_EXECUTOR__URL_ALLOW"):
        stage_inputs(task, tmp_path, allowing(server))


def test_a_redirect_within_the_allowed_server_is_followed(server, tmp_path):
    task = {"InputSources": [_input("urlDownload", "/in", URL=f"{server}/to//data.csv")]}

    [mount] = stage_inputs(task, tmp_path, allowing(server))

    assert mount.source.read_bytes() == PAYLOAD


def test_local_directories_only_from_the_allow_list(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    task = {"InputSources": [_input("localDirectory", "/data", SourcePath=str(shared))]}

    with pytest.raises(InputError, match="not in the allow-list"):
        stage_inputs(task, tmp_path / "work", ExecutorSettings())
    [mount] = stage_inputs(
        task, tmp_path / "work", ExecutorSettings(allowed_local_paths=[tmp_path])
    )

    assert mount.source == shared.resolve()
    assert mount.read_only is True


def test_escaping_the_allow_list_with_dot_dot_is_refused(tmp_path):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    sneaky = str(allowed / ".." / "..")
    task = {"InputSources": [_input("localDirectory", "/data", SourcePath=sneaky)]}

    with pytest.raises(InputError, match="not in the allow-list"):
        stage_inputs(task, tmp_path / "work", ExecutorSettings(allowed_local_paths=[allowed]))


@pytest.mark.parametrize("kind", ["s3", "ipfs"])
def test_remote_stores_are_not_supported_locally(kind, tmp_path):
    task = {"InputSources": [_input(kind, "/data", Bucket="b")]}

    with pytest.raises(InputError, match=f"'{kind}' .* is not supported by the local executor"):
        stage_inputs(task, tmp_path, ExecutorSettings())


def test_targets_cannot_climb_out_of_the_task_root(tmp_path):
    task = {"InputSources": [_input("inline", "../../etc/passwd", URL="data:,x")]}

    [mount] = stage_inputs(task, tmp_path, ExecutorSettings())

    assert mount.target == "/etc/passwd"
    assert Path(mount.source).is_relative_to(tmp_path)
