"""Getting a docker task's image onto the daemon, as Bacalhau's compute nodes do: pulled when
missing (the default), pulled before every run, or never (KLIPPFISK_EXECUTOR__PULL).

A pull answers with a stream of JSON progress lines, and a registry's refusal may arrive as an
`error` line after HTTP 200, so success is judged from the lines, not the status. What was
pulled becomes a note of the execution ("pulled <image> (<n> layers)"); while it pulls, each
change of a layer's status (a handful per layer, not the byte counts) and that note go to the
execution hooks' `progress`, which `job run` prints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from klippfisk.engine.executors.local.docker_api import DockerClient, DockerError, ImageMissing

__all__ = ["PullPolicy", "create_with_image", "pull", "split_reference"]

PullPolicy = Literal["missing", "always", "never"]
LAYER_DONE = {"Pull complete", "Already exists"}


def create_with_image(
    client: DockerClient,
    name: str,
    config: dict[str, Any],
    policy: PullPolicy,
    report: Callable[[str], None],
) -> tuple[str, list[str]]:
    """Create the container, pulling its image first as `policy` says; returns the
    container's id and the notes of any pull."""
    image = str(config.get("Image", ""))
    notes: list[str] = []
    if policy == "always":
        notes.append(pull(client, image, report))
    try:
        return client.create(name, config), notes
    except ImageMissing:
        if policy != "missing":
            raise
    notes.append(pull(client, image, report))
    return client.create(name, config), notes


def pull(client: DockerClient, image: str, report: Callable[[str], None]) -> str:
    """Pull `image`, reporting its layers' progress; returns the note saying it was pulled. A
    failure is a DockerError naming the image and the registry's reason."""
    repository, tag = split_reference(image)
    report(f"pulling {image}")
    statuses: dict[str, str] = {}  # layer id -> its last status
    try:
        for line in client.pull(repository, tag):
            if line.get("error") or line.get("errorDetail"):
                reason = line.get("error") or (line.get("errorDetail") or {}).get("message")
                break
            layer, status = str(line.get("id") or ""), str(line.get("status") or "")
            if layer and layer != tag and statuses.get(layer) != status:
                statuses[layer] = status
                report(f"pulling {image}: layer {layer} {status}")
        else:
            reason = None
    except DockerError as exc:  # refused before the stream began (a 404, a 500)
        reason = str(exc)
    if reason is not None:
        raise DockerError(
            f"Could not pull image {image!r}: {str(reason).strip()}. Check the image name and "
            "that the Docker host can reach its registry (or set KLIPPFISK_EXECUTOR__PULL=never "
            "and pull it there yourself)."
        )
    count = sum(1 for status in statuses.values() if status in LAYER_DONE)
    note = f"pulled {image} ({count} layer{'' if count == 1 else 's'})"
    report(note)
    return note


def split_reference(image: str) -> tuple[str, str]:
    """(repository, tag or digest) of an image reference; no tag means `latest` (an empty
    tag would make the daemon pull every tag of the repository)."""
    name, at, digest = image.partition("@")
    if at:
        return name, digest
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = name.rpartition(":")
        return repository, tag
    return name, "latest"
