"""docker tasks whose image is not on the daemon, pulled as Bacalhau's compute nodes pull:
from a real registry (Debian's docker-registry, on loopback, which Docker lets speak plain
HTTP), when missing by default, never when told so, and a registry's refusal named.

An image of busybox:1.36 and a layer of its own is built on the real daemon, pushed to the
registry and removed, so the job's image is there only to be pulled. Every image made here
is removed afterwards.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from klippfisk.engine.executors.local.docker_pull import split_reference

SOURCE_IMAGE = "busybox:1.36"
SHELL_JOB = (Path(__file__).parents[2] / "data" / "jobs" / "shell-job.yaml").read_text()


class Registry(NamedTuple):
    address: str  # host:port
    blobs: Path  # where it stores layers, configs and manifests, a directory each


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A Docker registry on loopback, storing in a temporary directory."""
    binary = shutil.which("docker-registry")
    if binary is None:
        message = "no docker-registry binary (apt-get install docker-registry)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = tmp_path_factory.mktemp("registry")
    config = root / "config.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (root / "registry.log").open("wb")
    server = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        address = f"127.0.0.1:{port}"
        _wait_for(address, server, root / "registry.log")
        yield Registry(address, root / "data" / "docker" / "registry" / "v2" / "blobs")
    finally:
        server.terminate()
        server.wait(10)
        log.close()


def _wait_for(address: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20  # a real server starting: no clock to fake
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://{address}/v2/", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"docker-registry did not answer on {address}: {log.read_text()[-2000:]}")


@pytest.fixture
def pushed(registry: Registry, real_docker_api: httpx.Client) -> Iterator[str]:
    """<registry>/greeting:1, an image of busybox:1.36 and one layer of its own, in the
    registry and not on the daemon (busybox's layer is, as on a node that ran busybox)."""
    image = f"{registry.address}/greeting:1"
    _push(real_docker_api, image, "pulled-and-ran")
    yield image
    _remove(real_docker_api, image)


def _push(api: httpx.Client, image: str, greeting: str) -> None:
    """Build `image` (busybox:1.36 and a /greeting layer), push it, remove it from the daemon."""
    repository, tag = split_reference(image)
    try:
        _build(api, image, f"FROM {SOURCE_IMAGE}\nRUN echo {greeting} > /greeting\n")
        push = api.post(
            f"/images/{repository}/push",
            params={"tag": tag},
            headers={"X-Registry-Auth": "e30="},
            timeout=120,
        )
        assert push.status_code == 200 and '"error"' not in push.text, push.text
    finally:
        _remove(api, image)


def _build(api: httpx.Client, tag: str, dockerfile: str) -> None:
    """Build `dockerfile` on the daemon as `tag`, offline."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    response = api.post(
        "/build",
        params={"t": tag, "networkmode": "none", "rm": "1", "forcerm": "1"},
        content=context.getvalue(),
        headers={"Content-Type": "application/x-tar"},
        timeout=120,
    )
    assert response.status_code == 200 and '"error"' not in response.text, response.text


def _remove(api: httpx.Client, image: str) -> None:
    """Remove `image` from the daemon (busybox:1.36's layers stay: it holds them)."""
    response = api.delete(f"/images/{image}")
    assert response.status_code in (200, 404), response.text


def _task(image: str) -> dict:
    return {
        "Name": "main",
        "Engine": {
            "Type": "docker",
            "Params": {"Image": image, "Entrypoint": ["cat", "/greeting"]},
        },
    }


def test_a_missing_image_is_pulled_and_the_task_runs(run_real, pushed, real_docker_api):
    run = run_real(_task(pushed))

    assert (run.outcome.error, run.outcome.output.exit_code) == (None, 0)
    assert run.outcome.output.stdout == "pulled-and-ran\n"
    assert f"pulled {pushed} (2 layers)" in run.hooks.calls[0][1]
    said = run.hooks.progress_messages  # what `job run` prints while it waits
    assert said[0] == f"pulling {pushed}" and said[-1] == f"pulled {pushed} (2 layers)"
    assert any(m.endswith("Pull complete") for m in said)
    assert any(m.endswith("Already exists") for m in said)  # busybox's layer
    assert len(said) < 20  # a line per change of a layer's status, not per byte count
    assert real_docker_api.get(f"/images/{pushed}/json").status_code == 200


def test_with_pull_never_a_missing_image_fails_saying_so(run_real, pushed, real_docker_api):
    run = run_real(_task(pushed), pull="never")

    assert f"docker pull {pushed}" in run.outcome.error
    assert "KLIPPFISK_EXECUTOR__PULL=never" in run.outcome.error
    assert real_docker_api.get(f"/images/{pushed}/json").status_code == 404


def test_an_image_the_registry_lacks_fails_naming_it_and_the_reason(run_real, registry):
    image = f"{registry.address}/nope:1"

    run = run_real(_task(image))

    assert f"Could not pull image {image!r}" in run.outcome.error
    assert "manifest unknown" in run.outcome.error or "not found" in run.outcome.error
    assert run.hooks.calls == []


def test_pull_always_pulls_an_image_already_there(run_real, pushed, real_docker_api):
    run_real(_task(pushed))

    run = run_real(_task(pushed), pull="always")

    assert run.outcome.error is None
    assert any(note.startswith(f"pulled {pushed} (") for note in run.hooks.calls[0][1])


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("busybox", ("busybox", "latest")),
        ("127.0.0.1:5000/busybox", ("127.0.0.1:5000/busybox", "latest")),
        ("127.0.0.1:5000/busybox:1.36", ("127.0.0.1:5000/busybox", "1.36")),
        ("busybox@sha256:ab", ("busybox", "sha256:ab")),
    ],
)
def test_an_untagged_image_means_latest_not_every_tag(image, expected):
    assert split_reference(image) == expected


def test_job_run_prints_the_pull_while_it_waits(
    tmp_path, pushed, isolated_data_dir, real_docker_host, real_docker_api
):
    job = tmp_path / "pulled.yaml"
    job.write_text(
        SHELL_JOB.format(
            name=f"pull-{uuid.uuid4()}",
            count=1,
            shell="/bin/sh",
            script="cat /greeting",
            memory="64Mi",
            timeout=60,
        ).replace("ubuntu:24.04", pushed)
    )
    env = {**os.environ, "DOCKER_HOST": real_docker_host}
    command = [sys.executable, "-m", "klippfisk", "job", "run", str(job)]

    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)

    assert done.returncode == 0, done.stderr
    assert "pulled-and-ran" in done.stdout
    assert f"klippfisk: pulling {pushed}\n" in done.stderr
    assert f"klippfisk: pulled {pushed} (2 layers)\n" in done.stderr
    left = real_docker_api.get(
        "/containers/json",
        params={"all": "1", "filters": json.dumps({"ancestor": [pushed]})},
    ).json()
    assert left == [], f"containers left behind: {left}"


def test_a_pull_that_breaks_midway_fails_naming_the_image_and_the_reason(
    run_real, registry, real_docker_api
):
    """The registry has the manifest but lost a layer: the daemon answers 200 and reports the
    failure in its progress stream."""
    image = f"{registry.address}/broken:1"
    before = set(registry.blobs.glob("sha256/*/*"))
    _push(real_docker_api, image, "never-seen")
    for blob in set(registry.blobs.glob("sha256/*/*")) - before:
        if not (blob / "data").read_bytes().startswith(b"{"):  # a layer, not JSON
            shutil.rmtree(blob)

    run = run_real(_task(image))

    assert f"Could not pull image {image!r}" in run.outcome.error
    assert "unknown blob" in run.outcome.error or "not found" in run.outcome.error
    assert run.hooks.calls == []
    assert real_docker_api.get(f"/images/{image}/json").status_code == 404
