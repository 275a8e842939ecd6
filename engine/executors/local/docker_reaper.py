"""Finding and ending the containers of executions, by the labels every container carries.

A container outlives whatever started it: a runner killed mid-job leaves its container
running, unseen. Each container is labelled with its job and execution (`container_config`),
so the runner's recovery can end an orphan's container before it records the failure, and
its sweep can end every container whose execution the ledger says is over. No daemon
answering is no container to end: the calls then do nothing, and the next sweep tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from klippfisk.engine.executors.local.docker_api import DockerClient, DockerError
from klippfisk.engine.settings import DockerSettings

__all__ = ["EXECUTION_LABEL", "JOB_LABEL", "ContainerReaper"]

log = logging.getLogger(__name__)

JOB_LABEL = "klippfisk.job"
EXECUTION_LABEL = "klippfisk.execution"

T = TypeVar("T")


class ContainerReaper:
    """Lists and ends labelled containers on the daemon the settings name (if it answers)."""

    def __init__(self, settings: DockerSettings) -> None:
        self.settings = settings

    def executions(self) -> set[tuple[str, str]]:
        """(job id, execution id) of every labelled container, running or not."""
        found: set[tuple[str, str]] = set()
        for labels in self._on_daemon(lambda client: client.containers(EXECUTION_LABEL).values()):
            if labels.get(JOB_LABEL) and labels.get(EXECUTION_LABEL):
                found.add((labels[JOB_LABEL], labels[EXECUTION_LABEL]))
        return found

    def end(self, execution_id: str) -> None:
        """Kill and remove every container of the execution (removal with force kills)."""

        def remove_all(client: DockerClient) -> list[str]:
            containers = client.containers(f"{EXECUTION_LABEL}={execution_id}")
            for container in containers:
                client.remove(container)
            return list(containers)

        for container in self._on_daemon(remove_all):
            log.info("removed container %s of execution %s", container[:12], execution_id)

    def _on_daemon(self, call: Callable[[DockerClient], Iterable[T]]) -> list[T]:
        """`call(client)` on the daemon if one answers, else nothing; a daemon error is
        logged and left for the next sweep."""
        try:
            client = DockerClient.locate(self.settings)
        except DockerError as exc:
            log.warning("containers of executions not looked for: %s", exc)
            return []
        if client is None:
            return []
        try:
            if not client.ping():
                return []
            return list(call(client))
        except DockerError as exc:
            log.warning("containers of executions not looked for or ended: %s", exc)
            return []
        finally:
            client.close()
