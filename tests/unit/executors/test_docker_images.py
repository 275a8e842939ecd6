"""docker tasks on a real Docker daemon, as images and daemons differ: an image whose USER is
not root writes its result paths, and a daemon with no bridge refuses the full network
instead of starting the task without one.

Run against the daemon `real_docker` names (skipped without one, failed on CI); the images
with a non-root user are built on it from busybox, offline, and removed afterwards. Every
test checks that no container of its execution is left on the daemon.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

import httpx
import pytest

from klippfisk.engine.executors.local.container_user import resolve_user

# Tags of the images built here, with the Dockerfile lines after `FROM busybox:1.36`.
USER_IMAGES = {
    "klippfisk-test-uid:1": "USER 1000:1000",
    "klippfisk-test-named:1": (
        "RUN echo worker:x:1234:1234::/tmp:/bin/sh >> /etc/passwd "
        "&& echo crew:x:1234: >> /etc/group\nUSER worker"
    ),
}


def _daemon(host: str) -> httpx.Client:
    return httpx.Client(
        transport=httpx.HTTPTransport(uds=host.removeprefix("unix://")),
        base_url="http://docker/v1.41",
        timeout=120,
    )


@pytest.fixture(scope="module")
def user_images(real_docker_host: str) -> Iterator[None]:
    """The images of USER_IMAGES, built on the real daemon (no network needed) and removed."""
    with _daemon(real_docker_host) as daemon:
        for tag, lines in USER_IMAGES.items():
            context = io.BytesIO()
            with tarfile.open(fileobj=context, mode="w") as tar:
                dockerfile = f"FROM busybox:1.36\n{lines}\n".encode()
                info = tarfile.TarInfo("Dockerfile")
                info.size = len(dockerfile)
                tar.addfile(info, io.BytesIO(dockerfile))
            response = daemon.post(
                "/build",
                params={"t": tag, "networkmode": "none", "rm": "1", "forcerm": "1"},
                content=context.getvalue(),
                headers={"Content-Type": "application/x-tar"},
            )
            errors = [line for line in response.text.splitlines() if '"error"' in line] or (
                [] if response.status_code == 200 else [response.text]
            )
            assert not errors, f"building {tag} failed: {errors}"
        try:
            yield
        finally:
            for tag in USER_IMAGES:
                daemon.delete(f"/images/{tag}", params={"force": "1"})


@pytest.mark.parametrize(
    ("image", "owner"), [("klippfisk-test-uid:1", 1000), ("klippfisk-test-named:1", 1234)]
)
def test_an_image_with_a_non_root_user_writes_its_result_paths(
    user_images, run_real, docker_task, image, owner
):
    task = docker_task(
        image,
        "-c",
        "id -u; echo made > /outputs/answer.txt",
        entrypoint=["sh"],
        results=[{"Name": "outputs", "Path": "/outputs"}],
    )

    run = run_real(task)

    assert (run.outcome.error, run.outcome.output.exit_code) == (None, 0), run.outcome
    assert run.outcome.output.stdout == f"{owner}\n"
    written = run.results / "outputs" / "answer.txt"
    assert written.read_text() == "made\n"
    assert written.stat().st_uid == owner


def test_a_root_image_keeps_root_owned_result_paths(run_real, docker_task):
    task = docker_task(
        "busybox:1.36",
        "-c",
        "echo made > /outputs/answer.txt",
        entrypoint=["sh"],
        results=[{"Name": "outputs", "Path": "/outputs"}],
    )

    run = run_real(task)

    assert run.outcome.error is None
    outputs = run.results / "outputs"
    assert (outputs.stat().st_uid, oct(outputs.stat().st_mode & 0o777)) == (0, "0o755")


def test_the_full_network_on_a_daemon_with_no_bridge_is_refused_before_start(
    run_real, docker_task, real_docker_api: httpx.Client
):
    if real_docker_api.get("/networks/bridge").status_code == 200:
        pytest.skip("this daemon has a bridge network (the test's daemon runs --bridge=none)")
    task = docker_task("busybox:1.36", "-c", "echo ran", entrypoint=["sh"], network="Full")

    run = run_real(task, allow_networked_jobs=True)

    assert run.hooks.calls == []  # never started
    assert "has no bridge network, so this job's Network Full cannot be given" in (
        run.outcome.error or ""
    )


def test_the_host_network_is_given_on_a_daemon_with_no_bridge(run_real, docker_task):
    task = docker_task("busybox:1.36", "-c", "echo ran", entrypoint=["sh"], network="Host")

    run = run_real(task, allow_networked_jobs=True)

    assert (run.outcome.error, run.outcome.output.stdout) == (None, "ran\n")
    assert "network host" in run.hooks.calls[0][1][0]


PASSWD = b"root:x:0:0::/root:/bin/sh\nworker:x:1234:1300::/tmp:/bin/sh\n"
GROUP = b"root:x:0:\ncrew:x:1400:\n"


@pytest.mark.parametrize(
    ("user", "resolved"),
    [
        ("", (0, 0)),
        ("root", (0, 0)),
        ("worker", (1234, 1300)),
        ("worker:crew", (1234, 1400)),
        ("1234", (1234, 1300)),
        ("5000", (5000, 0)),
        ("5000:7", (5000, 7)),
        ("nobody-here", None),
        ("worker:no-group", None),
    ],
)
def test_the_container_user_is_resolved_as_docker_does(user, resolved):
    files = {"/etc/passwd": PASSWD, "/etc/group": GROUP}

    assert resolve_user(user, files.get) == resolved
