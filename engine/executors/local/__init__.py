"""The embedded executor (wasm, docker-without-daemon, noop engines)."""

from klippfisk.engine.executors.local.executor import LocalExecutor

__all__ = ["LocalExecutor"]
