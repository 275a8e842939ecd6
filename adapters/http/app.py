"""The composition root of the HTTP API: one FastAPI app over a ledger (and a runner).

`create_app` checks the security settings first (no keys and no anonymous mode is refused,
anonymous mode off loopback is refused), then wires the routers, the error handlers and the
guard. The runner, when given, runs for the app's lifetime in the same process.

The guard and the two fast paths wrap the FastAPI app from outside rather than sitting in
its middleware stack: every request passes them, and FastAPI's own layers (error catching,
telemetry probes, body-limit wrapping) cost more than the guard itself. Outside, a job
submission and a repeated history poll are answered before any of that runs, and every
response, the 500s that FastAPI's outermost error layer writes included, passes the guard's
request-id tagging.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI

from klippfisk.adapters.http import agent, compiler, jobs, logs
from klippfisk.adapters.http.guard import Guard, is_loopback
from klippfisk.adapters.http.history_cache import HistoryCache, HistoryFastPath
from klippfisk.adapters.http.problems import install_problem_handlers
from klippfisk.adapters.http.schemas import ERROR_RESPONSES
from klippfisk.adapters.http.submit_fast_path import SubmitFastPath
from klippfisk.adapters.settings import AppSettings
from klippfisk.engine import Ledger

__all__ = ["Background", "ServeError", "create_app"]


class ServeError(Exception):
    """The server cannot start as configured; the message says how to fix it."""


class Background(Protocol):
    """Something that runs beside the API for its lifetime (the embedded runner)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def _check(settings: AppSettings) -> None:
    server = settings.server
    if server.anonymous and not is_loopback(server.host):
        raise ServeError(
            f"Anonymous mode is only allowed on a loopback address, not {server.host}. "
            "Bind 127.0.0.1, or configure API keys with KLIPPFISK_SERVER__API_KEYS."
        )
    if not server.api_keys and not server.anonymous:
        raise ServeError(
            "No API keys are configured, so nobody could use this server. Set "
            'KLIPPFISK_SERVER__API_KEYS=\'[{"key": "...", "namespace": "default"}]\', '
            "or pass --anonymous on a loopback address."
        )


def create_app(
    settings: AppSettings, ledger: Ledger, background: Background | None = None
) -> Guard:
    """The API app (an ASGI callable for uvicorn); raises ServeError when the settings would
    make it unsafe or unusable."""
    _check(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if background is not None:
            background.start()
        try:
            yield
        finally:
            if background is not None:
                background.stop()

    app = FastAPI(
        title="Klippfisk",
        version=agent.own_version(),
        description="Bacalhau API v1 compatible orchestrator over the Klippfisk ledger.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        responses=ERROR_RESPONSES,
    )
    app.state.ledger = ledger
    app.state.settings = settings
    app.state.history_cache = cache = HistoryCache(ledger)
    for module in (jobs, logs, compiler, agent):  # the busiest routes are matched first
        app.include_router(module.router)
    install_problem_handlers(app)
    off_loop = settings.server.history_head_off_loop
    if off_loop is None:
        off_loop = settings.ledger.store != "sqlite"
    history_fast_path = HistoryFastPath(app, cache, head_off_loop=off_loop)
    return Guard(SubmitFastPath(history_fast_path, ledger), settings.server)  # auth first
