"""Choosing an engine: noop, unsupported engines, and the registry's order."""

from __future__ import annotations

import threading

import pytest

from klippfisk.engine.executors.base import ExecutionOutcome, ExecutorError
from klippfisk.engine.executors.local import LocalExecutor
from klippfisk.engine.executors.registry import (
    ExecutorRegistry,
    UnsupportedEngine,
    default_registry,
)


def test_noop_completes_at_once_with_no_output(run_task):
    run = run_task({"Name": "main", "Engine": {"Type": "noop"}})

    assert run.outcome.output.exit_code == 0
    assert run.outcome.output.stdout == ""
    assert run.hooks.calls == [("local", [])]


def test_unknown_engine_fails_in_bacalhaus_words(run_task):
    run = run_task({"Name": "main", "Engine": {"Type": "vroomvroom"}})

    assert run.outcome.error == "the local executor does not support vroomvroom"


def test_stop_before_start_runs_nothing(run_task, docker_task):
    cancel = threading.Event()
    cancel.set()

    run = run_task(docker_task("ubuntu", "true"), cancel=cancel)

    assert run.outcome.cancelled is True
    assert run.hooks.calls == []


class _Remote:
    """A stand-in executor for ordering only; it is never run."""

    name = "remote"

    def supports(self, engine_type: str) -> bool:
        return engine_type == "docker"

    def run(self, request, hooks, cancel) -> ExecutionOutcome:  # pragma: no cover
        raise AssertionError("not run in this test")

    def close(self) -> None:
        """Nothing held."""


def test_registry_picks_the_first_executor_that_supports_the_engine(settings):
    registry = default_registry(settings)
    remote = _Remote()

    registry.register(remote, first=True)

    assert registry.for_engine("docker") is remote
    assert isinstance(registry.for_engine("wasm"), LocalExecutor)


def test_registry_names_the_engine_nobody_supports():
    with pytest.raises(UnsupportedEngine, match="does not support flibble"):
        ExecutorRegistry([_Remote()]).for_engine("flibble")


def test_the_bacalhau_setting_puts_the_cluster_first_and_keeps_local_for_the_rest(settings):
    remote = settings.model_copy(
        update={"executor": settings.executor.model_copy(update={"default": "bacalhau"})}
    )

    registry = default_registry(remote)

    assert [e.name for e in registry] == ["bacalhau", "local"]
    assert registry.for_engine("docker").name == "bacalhau"
    assert registry.for_engine("noop").name == "local"
    registry.close()


def test_an_explicit_choice_wins_over_the_setting(settings):
    assert [e.name for e in default_registry(settings, "bacalhau")][0] == "bacalhau"
    assert [e.name for e in default_registry(settings)] == ["local"]


def test_an_unknown_executor_name_is_refused_with_the_choices(settings):
    with pytest.raises(ExecutorError, match="use one of: local, bacalhau"):
        default_registry(settings, "kubernetes")
